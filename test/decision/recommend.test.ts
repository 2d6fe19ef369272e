import { describe, expect, it } from 'vitest';
import { recommend } from '../../src/decision/recommend.js';
import { applySafetyGuard } from '../../src/decision/safety-guard.js';
import type { CategoryResult, ClinicalFacts, FlagStatus } from '../../src/facts/types.js';
import type { Modality } from '../../src/rules/types.js';
import { realRules } from '../support/app.js';
import { order } from '../support/records.js';

const rules = await realRules();

function facts(status: Record<string, FlagStatus>): ClinicalFacts {
  const categories: CategoryResult[] = rules.redFlags.categories.map((c) => ({
    id: c.id,
    label: c.label,
    tier: c.tier,
    status: status[c.id] ?? 'not-found',
    flags: [],
  }));
  return { sex: 'female', age: 40, languages: [], episode: {}, redFlags: [], categories, unreadable: [] };
}
const orderOf = (m: Modality) => order(m === 'xray' ? '72100' : m === 'ct' ? '72131' : '72148', m);
const decide = async (status: Record<string, FlagStatus>, m: Modality = 'mri') => (await recommend(facts(status), orderOf(m), rules)).recommendation;

describe('recommendation rules follow the recommendation table (README: What it answers)', () => {
  it('gives each situation its code', async () => {
    expect(await decide({})).toBe('imaging-not-indicated');
    expect(await decide({ 'cauda-equina': 'found' })).toBe('imaging-urgent');
    expect(await decide({ 'cancer-history': 'found' })).toBe('imaging-urgent');
    expect(await decide({ 'radicular-persistent': 'found' })).toBe('imaging-appropriate');
    expect(await decide({ 'fracture-risk': 'found' }, 'xray')).toBe('imaging-appropriate');
    expect(await decide({ 'fracture-risk': 'found' }, 'ct')).toBe('imaging-xray-first');
    expect(await decide({ 'cancer-weaker-risk': 'found' })).toBe('imaging-deferred');
    expect(await decide({ inflammatory: 'found' })).toBe('imaging-deferred');
    expect(await decide({ 'radicular-recent': 'found' })).toBe('imaging-deferred');
    expect(await decide({ 'spinal-infection': 'unknown' })).toBe('red-flags-unverified');
  });

  it('lets the first code in the precedence list win', async () => {
    expect(await decide({ 'spinal-infection': 'found', 'fracture-risk': 'found', 'cancer-weaker-risk': 'found' })).toBe('imaging-urgent');
    expect(await decide({ 'radicular-persistent': 'found', 'cauda-equina': 'unknown' })).toBe('imaging-appropriate');
    expect(await decide({ 'fracture-risk': 'found', 'cauda-equina': 'unknown' }, 'mri')).toBe('red-flags-unverified');
    expect(await decide({ 'fracture-risk': 'found', 'cancer-weaker-risk': 'found' }, 'mri')).toBe('imaging-xray-first');
    expect(await decide({ 'cauda-equina': 'found', 'neurological-deficit': 'unknown' })).toBe('imaging-urgent');
  });

  it('gives the same answers when many calls run at once (one Engine per call)', async () => {
    const cases: Array<[Record<string, FlagStatus>, Modality, string]> = [
      [{}, 'mri', 'imaging-not-indicated'],
      [{ 'fracture-risk': 'found' }, 'ct', 'imaging-xray-first'],
      [{ 'cauda-equina': 'found' }, 'xray', 'imaging-urgent'],
      [{ 'cancer-weaker-risk': 'found' }, 'mri', 'imaging-deferred'],
      [{ 'spinal-infection': 'unknown' }, 'mri', 'red-flags-unverified'],
    ];
    const runs = Array.from({ length: 200 }, (_, i) => cases[i % cases.length]!);
    const answers = await Promise.all(runs.map(([s, m]) => decide(s, m)));
    expect(answers).toEqual(runs.map(([, , want]) => want));
  });
});

describe('the safety guard overrules rules that would advise against imaging', () => {
  it('turns any advice against imaging into imaging-urgent when a major red flag is found', () => {
    for (const code of ['imaging-not-indicated', 'imaging-deferred', 'imaging-xray-first'] as const) {
      const g = applySafetyGuard(code, facts({ 'spinal-infection': 'found' }), rules);
      expect(g.recommendation).toBe('imaging-urgent');
      expect(g.overruled).toMatch(/spinal-infection/);
    }
  });

  it('turns it into red-flags-unverified when part of the check is unknown', () => {
    const g = applySafetyGuard('imaging-not-indicated', facts({ 'cauda-equina': 'unknown' }), rules);
    expect(g.recommendation).toBe('red-flags-unverified');
  });

  it('leaves sound decisions alone', () => {
    expect(applySafetyGuard('imaging-not-indicated', facts({}), rules)).toEqual({ recommendation: 'imaging-not-indicated' });
    expect(applySafetyGuard('imaging-urgent', facts({ 'cauda-equina': 'found' }), rules)).toEqual({ recommendation: 'imaging-urgent' });
  });
});
