'use strict';
// Peer-benchmark driver for @amplitude/analytics-node (the current official Node SDK).
//
// Normal mode: track every NDJSON event, then `flush().promise`, then exit. With
// --flush-every N, also await `flush().promise` after every N tracked events.
// --hold mode: track every event with flushing pushed out of reach, report RSS growth.
const { createInstance } = require('@amplitude/analytics-node');
const { version } = require('@amplitude/analytics-node/package.json');
const { readLines, rssKb, report, main } = require('./common');

// One hour: far beyond any run, and below setTimeout's 2^31-1 ms ceiling (a larger
// value would overflow and fire at once).
const FLUSH_INTERVAL_MS = 3600 * 1000;

main(async (args) => {
  const lines = readLines(args.input);
  const client = createInstance();
  const options = {
    // Never used in --hold mode (nothing is flushed), but must be a valid local URL.
    serverUrl: args.url || 'http://127.0.0.1:9/2/httpapi',
    flushQueueSize: args.hold ? lines.length + 1 : args.flushSize,
    flushIntervalMillis: FLUSH_INTERVAL_MS,
    logLevel: 1, // Error
    offline: args.hold,
  };
  await client.init(args.apiKey, options).promise;

  if (args.hold) {
    // `offline: true` keeps the destination from sending; flush() then moves every
    // event from the timeline (which would otherwise apply one event per timer tick)
    // into the destination's queue, where it waits as it would before a real flush.
    const before = rssKb();
    for (const line of lines) client.track(JSON.parse(line));
    await client.flush().promise;
    const after = rssKb();
    report({ sdk: '@amplitude/analytics-node', version, held: lines.length, rss_before_kb: before, rss_after_kb: after });
    return;
  }

  let ok = 0;
  let failed = 0;
  const results = [];
  let sinceFlush = 0;
  for (const line of lines) {
    results.push(
      client.track(JSON.parse(line)).promise.then((r) => {
        if (r && r.code === 200) ok++;
        else failed++;
      }),
    );
    // Optional: emulate "send every N events" by hand, since this SDK's flushQueueSize
    // only sizes the batches of a flush and never triggers one.
    if (args.flushEvery > 0 && ++sinceFlush === args.flushEvery) {
      sinceFlush = 0;
      await client.flush().promise;
    }
  }
  await client.flush().promise;
  await Promise.all(results);
  report({ sdk: '@amplitude/analytics-node', version, tracked: lines.length, sdk_ok: ok, sdk_failed: failed, options: { flushQueueSize: options.flushQueueSize, flushIntervalMillis: FLUSH_INTERVAL_MS, manualFlushEvery: args.flushEvery } });
});
