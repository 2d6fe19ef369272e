import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../src/store/database.js';
import { DatabaseReplayStore, MemoryReplayStore, PersistedReplayStore, REPLAY_PURGE_INTERVAL_MS, type ReplayStore } from '../../src/store/replay-store.js';
import { tempDataDir } from '../support/app.js';

/** Seen JWT ids: refused while their token lives, accepted again after, and swept on a timer rather than per call. */
const PG_URL = process.env.DATABASE_URL;
const schemas: string[] = [];
const stores: Store[] = [];
afterAll(async () => {
  for (const s of stores) await s.close();
  if (!PG_URL || schemas.length === 0) return;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  for (const s of schemas) await client.query(`drop schema if exists ${s} cascade`);
  await client.end();
});

async function database(kind: 'sqlite' | 'postgres'): Promise<Store> {
  const schema = `t_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  if (kind === 'postgres') schemas.push(schema);
  const store = await openStore(kind === 'postgres' ? { databaseUrl: PG_URL, databaseSchema: schema, dataDir: tempDataDir() } : { dataDir: tempDataDir() });
  stores.push(store);
  return store;
}

const kinds: Array<{ name: string; make: () => Promise<{ replays: ReplayStore; kept: () => Promise<number>; settled: () => Promise<void> }> }> = [
  {
    name: 'memory',
    make: async () => {
      const replays = new MemoryReplayStore();
      return { replays, kept: async () => replays.size, settled: async () => {} };
    },
  },
  {
    name: 'SQLite',
    make: async () => {
      const store = await database('sqlite');
      const replays = new DatabaseReplayStore(store);
      return { replays, kept: async () => (await store.db.selectFrom('jti_seen').select('jti_key').execute()).length, settled: () => replays.settled() };
    },
  },
];
if (PG_URL) {
  kinds.push({
    name: 'PostgreSQL',
    make: async () => {
      const store = await database('postgres');
      const replays = new DatabaseReplayStore(store);
      return { replays, kept: async () => (await store.db.selectFrom('jti_seen').select('jti_key').execute()).length, settled: () => replays.settled() };
    },
  });
}

describe.each(kinds)('replay store in $name', ({ make }) => {
  it('refuses an id while its token lives and takes it again once expired', async () => {
    const { replays } = await make();
    const t = 1_800_000_000_000;
    expect(await replays.remember('iss|a', t + 300_000, t)).toBe(true);
    expect(await replays.remember('iss|a', t + 300_000, t + 1_000)).toBe(false);
    expect(await replays.remember('iss|a', t + 300_000, t + 299_999)).toBe(false);
    expect(await replays.remember('iss|b', t + 300_000, t + 2_000)).toBe(true);
    expect(await replays.remember('iss|a', t + 900_000, t + 300_000)).toBe(true);
    expect(await replays.remember('iss|a', t + 900_000, t + 300_001)).toBe(false);
  });

  it('sweeps expired ids once per interval, keeping the live ones', async () => {
    const { replays, kept, settled } = await make();
    const t = 1_800_000_000_000;
    for (let i = 0; i < 20; i++) expect(await replays.remember(`iss|short-${i}`, t + 1_000, t)).toBe(true);
    expect(await replays.remember('iss|long', t + 10 * REPLAY_PURGE_INTERVAL_MS, t)).toBe(true);
    await settled();
    // Expired, but the interval has not passed: nothing is swept yet.
    expect(await replays.remember('iss|next', t + 10 * REPLAY_PURGE_INTERVAL_MS, t + 2_000)).toBe(true);
    await settled();
    expect(await kept()).toBe(22);
    // The interval has passed: the next call sweeps the expired ids, never a live one.
    expect(await replays.remember('iss|later', t + 10 * REPLAY_PURGE_INTERVAL_MS, t + REPLAY_PURGE_INTERVAL_MS + 1)).toBe(true);
    await settled();
    expect(await kept()).toBe(3);
    expect(await replays.remember('iss|long', t + 10 * REPLAY_PURGE_INTERVAL_MS, t + REPLAY_PURGE_INTERVAL_MS + 2)).toBe(false);
  });
});

describe('the embedded store keeps seen JWT ids across a restart', () => {
  it('ids written at close are read back by the next start; nothing is written after close', async () => {
    const dataDir = tempDataDir();
    const now = Date.now();
    const first = await openStore({ dataDir });
    const replays = await PersistedReplayStore.open(first);
    expect(await replays.remember('iss|a', now + 60_000, now)).toBe(true);
    expect(await replays.remember('iss|a', now + 60_000, now)).toBe(false);
    expect(await replays.remember('iss|gone', now + 10, now)).toBe(true);
    await replays.close();
    // After close an id is still checked in memory, and nothing is queued for a store about to close.
    expect(await replays.remember('iss|late', now + 60_000, now)).toBe(true);
    await first.close();

    const second = await openStore({ dataDir });
    stores.push(second);
    const again = await PersistedReplayStore.open(second);
    expect(await again.remember('iss|a', now + 60_000, Date.now())).toBe(false);
    // An id whose token has expired is not read back; one never written is new.
    expect(await again.remember('iss|gone', now + 60_000, now + 1_000)).toBe(true);
    expect(await again.remember('iss|late', now + 60_000, Date.now())).toBe(true);
    await again.close();
  });
});
