// The playground page: loads the fixture patients, posts a patient and an order to /playground/evaluate, and draws the
// answer. Plain browser JavaScript, no dependencies, served by the service itself.
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
let scenarios = [];

async function loadScenarios() {
  const res = await fetch('/playground/scenarios');
  if (!res.ok) return;
  scenarios = (await res.json()).scenarios;
  for (const s of scenarios) {
    const option = document.createElement('option');
    option.value = s.id;
    option.textContent = s.id;
    $('scenario').append(option);
  }
}

function pickScenario() {
  const s = scenarios.find((x) => x.id === $('scenario').value);
  $('scenario-description').textContent = s ? s.description : '';
  if (s) $('bundle').value = JSON.stringify(s.patient, null, 2);
}

function cardHtml(card) {
  const suggestions = (card.suggestions ?? []).map((s) => `<button type="button" disabled>${esc(s.label)}</button>`).join('');
  const links = (card.links ?? []).map((l) => `<li><a href="${esc(l.url)}" target="_blank" rel="noopener">${esc(l.label)}</a></li>`).join('');
  const reasons = (card.overrideReasons ?? []).map((r) => `<li>${esc(r.display)}</li>`).join('');
  return `<article class="card ${esc(card.indicator)}">
    <div class="badge">${esc(card.indicator)} · ${esc(card.source?.topic?.code)}</div>
    <div class="summary">${esc(card.summary)}</div>
    <div class="detail">${card.detailHtml}</div>
    ${suggestions ? `<div class="suggestions">${suggestions}</div>` : ''}
    ${reasons ? `<details><summary>Override reasons</summary><ul>${reasons}</ul></details>` : ''}
    ${links ? `<details><summary>Links</summary><ul>${links}</ul></details>` : ''}
  </article>`;
}

function factsHtml(a) {
  const rows = a.categories
    .flatMap((c) =>
      c.flags.map(
        (f, i) => `<tr>${i === 0 ? `<td rowspan="${c.flags.length}">${esc(c.label)}<br><span class="${esc(c.status)}">${esc(c.status)}</span></td>` : ''}
          <td>${esc(f.label)}</td><td class="${esc(f.status)}">${esc(f.status)}</td>
          <td>${f.sources.map((s) => esc([s.reference, s.name, s.code, s.value, s.date].filter(Boolean).join(' · '))).join('<br>')}${f.unreadable.length ? `could not read: ${esc(f.unreadable.join(', '))}` : ''}</td></tr>`,
      ),
    )
    .join('');
  const fired = a.firedRules.map((r) => `<li><code>${esc(r.name)}</code> ${esc(r.description ?? '')}</li>`).join('') || '<li>none: the default recommendation</li>';
  const evidence = a.evidence.map((e) => `<li><strong>${esc(e.short)}</strong>: ${esc(e.finding)}</li>`).join('');
  return `<h2>Red flags for ${esc(a.order)}: <code>${esc(a.recommendation)}</code></h2>
    <p class="muted">Age ${esc(a.age ?? 'unknown')}; episode ${a.episode.durationDays !== undefined ? `${esc(a.episode.durationDays)} days` : 'undated'}${a.unreadable.length ? `; could not read ${esc(a.unreadable.join(', '))}` : ''}${a.guardNote ? `; safety guard: ${esc(a.guardNote)}` : ''}</p>
    <table><thead><tr><th>Category</th><th>Flag</th><th>Status</th><th>From the record</th></tr></thead><tbody>${rows}</tbody></table>
    <h2>Rules that fired</h2><ul>${fired}</ul><h2>Evidence</h2><ul>${evidence}</ul>`;
}

async function evaluate() {
  $('error').textContent = '';
  let bundle;
  try {
    bundle = JSON.parse($('bundle').value);
  } catch {
    $('error').textContent = 'The Bundle is not valid JSON.';
    return;
  }
  const headers = { 'content-type': 'application/json' };
  if ($('token').value) headers.authorization = `Bearer ${$('token').value}`;
  const res = await fetch('/playground/evaluate', {
    method: 'POST',
    headers,
    body: JSON.stringify({ bundle, order: { modality: $('modality').value, lowBackPainReason: $('reason').checked } }),
  });
  const body = await res.json();
  if (!res.ok) {
    $('error').textContent = body.issue?.[0]?.diagnostics ?? `HTTP ${res.status}`;
    return;
  }
  $('version').textContent = `${body.compare ? 'Live rules' : 'Rules'} ${body.rulesVersion}`;
  $('cards').innerHTML = cardsHtml(body.cards);
  $('facts').innerHTML = body.assessments.map(factsHtml).join('');
  showCopy(body.compare);
}

function cardsHtml(cards) {
  return cards.length ? cards.map(cardHtml).join('') : '<p>No card: the order is out of scope (not lumbar imaging for low back pain).</p>';
}

function changeHtml(c) {
  if (c.kind === 'recommendation') return `<li>${esc(c.order)}: recommendation <code>${esc(c.live)}</code> becomes <code>${esc(c.copy)}</code></li>`;
  if (c.kind === 'rule-fired') return `<li>${esc(c.order)}: rule <code>${esc(c.rule)}</code> fires only ${c.in === 'live' ? 'with the live rules' : 'with the copy'}</li>`;
  if (c.kind === 'category') return `<li>${esc(c.order)}: ${esc(c.category)} <span class="${esc(c.live)}">${esc(c.live)}</span> becomes <span class="${esc(c.copy)}">${esc(c.copy)}</span></li>`;
  return `<li>card ${c.index + 1}: “${esc(c.live ?? '(none)')}” becomes “${esc(c.copy ?? '(none)')}”</li>`;
}

/** The edited copy's answer beside the live one, and what changed between them (or why the copy was refused). */
function showCopy(compare) {
  $('copy').hidden = !compare;
  $('columns').className = compare ? 'side-by-side' : '';
  $('changes').innerHTML = '';
  $('copy-cards').innerHTML = '';
  $('copy-facts').innerHTML = '';
  if (!compare) return;
  if (compare.problems) {
    $('copy-version').textContent = `Edited copy in ${compare.rulesDir}`;
    $('changes').innerHTML = `<div class="changes"><h2>The edited copy does not load</h2><ul>${compare.problems.map((p) => `<li>${esc(p)}</li>`).join('')}</ul></div>`;
    return;
  }
  $('copy-version').textContent = `Edited copy ${compare.rulesVersion} (${compare.rulesDir})`;
  $('copy-cards').innerHTML = cardsHtml(compare.cards);
  $('copy-facts').innerHTML = compare.assessments.map(factsHtml).join('');
  $('changes').innerHTML = `<div class="changes"><h2>What the edited copy changes for this patient</h2><ul>${compare.changes.map(changeHtml).join('') || '<li>Nothing: both answer alike.</li>'}</ul></div>`;
}

document.addEventListener('DOMContentLoaded', () => {
  $('scenario').addEventListener('change', pickScenario);
  $('evaluate').addEventListener('click', evaluate);
  void loadScenarios();
});
