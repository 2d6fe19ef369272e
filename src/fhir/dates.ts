/** FHIR date and dateTime handling: partial dates ("2024", "2024-05") count from their first day. */

const DAY_MS = 86_400_000;

export function parseFhirDate(value: string | undefined): Date | undefined {
  if (!value) return undefined;
  const m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(value);
  if (!m) return undefined;
  if (value.length > 10) {
    const full = new Date(value);
    if (!Number.isNaN(full.getTime())) return full;
  }
  const d = new Date(Date.UTC(Number(m[1]), m[2] ? Number(m[2]) - 1 : 0, m[3] ? Number(m[3]) : 1));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function daysBetween(from: Date, to: Date): number {
  return Math.floor((to.getTime() - from.getTime()) / DAY_MS);
}

export function addDays(date: Date, days: number): Date {
  return new Date(date.getTime() + days * DAY_MS);
}

/**
 * Completed years between a birth date and a day, as clinicians count age.
 * A partial birth date ("1960", "1960-07") gives the highest age it allows: age raises red flags, so erring high is the safe side.
 */
export function ageInYears(birthDate: string | undefined, on: Date): number | undefined {
  const m = birthDate ? /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(birthDate.slice(0, 10)) : null;
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = m[2] ? Number(m[2]) : 1;
  const day = m[3] ? Number(m[3]) : 1;
  const onMonth = on.getUTCMonth() + 1;
  let age = on.getUTCFullYear() - year;
  if (onMonth < month || (onMonth === month && on.getUTCDate() < day)) age -= 1;
  return age >= 0 ? age : undefined;
}

/** Length of a FHIR Duration in days, when its unit is a time unit. */
export function durationDays(duration: { value?: number; code?: string; unit?: string } | undefined): number | undefined {
  if (!duration || typeof duration.value !== 'number') return undefined;
  const unit = (duration.code ?? duration.unit ?? '').toLowerCase();
  const perDay: Record<string, number> = { d: 1, day: 1, days: 1, wk: 7, week: 7, weeks: 7, mo: 30, month: 30, months: 30, a: 365, year: 365, years: 365, h: 1 / 24 };
  const factor = perDay[unit];
  return factor === undefined ? undefined : duration.value * factor;
}

/**
 * The calendar days a FHIR date or dateTime may mean, as written (a time zone does not move the day): "2026-09" is
 * 2026-09-01 to 2026-09-30. Comparing the right bound keeps partial dates on the safe side.
 */
export function calendarBounds(value: string | undefined): { earliest: string; latest: string } | undefined {
  const m = value ? /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?/.exec(value) : null;
  if (!m) return undefined;
  const [year, month, day] = [m[1]!, m[2], m[3]];
  if (day && month) return { earliest: `${year}-${month}-${day}`, latest: `${year}-${month}-${day}` };
  if (month) {
    const last = new Date(Date.UTC(Number(year), Number(month), 0)).getUTCDate();
    return { earliest: `${year}-${month}-01`, latest: `${year}-${month}-${String(last).padStart(2, '0')}` };
  }
  return { earliest: `${year}-01-01`, latest: `${year}-12-31` };
}

export function isoDay(date: Date): string {
  return date.toISOString().slice(0, 10);
}
