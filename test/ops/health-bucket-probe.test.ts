/**
 * `/health` and the bucket's bill: each probe of an S3 mirror is a request (HeadBucket), and
 * `/health` is polled by orchestrators and the operator page. A good answer is kept for half an
 * hour while the catalog shows nothing wrong; a new mirror outage in the catalog makes the next
 * answer probe again, and a failed probe is asked again within seconds. Through a recording proxy
 * in front of a real s3rver; the producer runs in this process (the SDK takes its credentials from
 * the environment, set here).
 */
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { setProcessEnv, waitUntil } from '../helpers/env.js';
import { auth } from '../helpers/producer.js';
import { S3Server } from '../helpers/s3.js';
import { useStack } from '../helpers/stack.js';

let s3: S3Server;
let restoreEnv: (() => void) | undefined;

beforeAll(async () => {
  s3 = await S3Server.start({ record: true });
});
afterAll(() => s3?.cleanup());

const stack = useStack('health-bucket-probe', {
  env: () => s3.env('workstation'),
  // The producer of this process takes the bucket's credentials from the process environment.
  prepare(_file, box) {
    restoreEnv = setProcessEnv({ AWS_ACCESS_KEY_ID: box.env.AWS_ACCESS_KEY_ID!, AWS_SECRET_ACCESS_KEY: box.env.AWS_SECRET_ACCESS_KEY! });
  },
  teardown: () => restoreEnv?.(),
  workers: 0,
});

/** HeadBucket requests (the probe) among the recorded lines: a HEAD of the bucket itself, no key. */
const bucketHeads = (from = 0) => s3.requests.slice(from).filter((l) => new RegExp(`^HEAD /${s3.bucket}/?(\\?|$)`).test(l));

interface Mirror {
  writable: boolean | null;
  detail: string;
}

async function mirror(): Promise<Mirror> {
  const res = await request(stack.producer.url).get('/health').set(auth);
  return (res.body as { storage: { mirror: Mirror } }).storage.mirror;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the probe of an S3 mirror behind /health', () => {
  it('is one HeadBucket for many polls past the disks’ 5 s cache while the catalog shows nothing wrong', async () => {
    const from = s3.requests.length;
    const answers: Mirror[] = [];
    for (let i = 0; i < 3; i++) {
      if (i) await sleep(5_600); // past both 5 s caches (the storage state's and a disk probe's)
      answers.push(await mirror());
    }
    for (const a of answers) expect(a).toMatchObject({ writable: true, detail: expect.stringMatching(/^reachable \(checked \d{4}-/) });
    expect(bucketHeads(from)).toHaveLength(1);
    // The same answer, with the time it was taken.
    expect(new Set(answers.map((a) => a.detail)).size).toBe(1);
  });

  it('probes again once the catalog records copies to the mirror failing, and again within seconds after a failed probe', async () => {
    await s3.stop();
    stack.catalog.setSetting('mirror-outage', { since: new Date().toISOString(), reason: 'test: the bucket is stopped', announced: true });
    const down = await waitUntil('/health to see the bucket gone', async () => ((await mirror()).writable === false ? true : null), 15_000);
    expect(down).toBe(true);

    await s3.start();
    const from = s3.requests.length;
    // The outage is still recorded (no copy succeeded yet), and the last probe failed: asked again soon.
    await waitUntil('/health to see the bucket back', async () => ((await mirror()).writable === true ? true : null), 15_000);
    expect(bucketHeads(from).length).toBeGreaterThanOrEqual(1);
    stack.catalog.setSetting('mirror-outage', null);
  });
});
