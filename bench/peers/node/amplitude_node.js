'use strict';
// Peer-benchmark driver for @amplitude/node (the older official Node SDK).
//
// Normal mode: log every NDJSON event (the SDK flushes each time maxCachedEvents are
// queued), then `flush()`, wait for every event's promise, then exit.
// --hold mode: log every event with flushing pushed out of reach, report RSS growth.
const Amplitude = require('@amplitude/node');
const { version } = require('@amplitude/node/package.json');
const { readLines, rssKb, report, main } = require('./common');

// One hour, in the unit this SDK takes; below setTimeout's 2^31-1 ms ceiling.
const UPLOAD_INTERVAL_S = 3600;

main(async (args) => {
  const lines = readLines(args.input);
  const options = {
    serverUrl: args.url || 'http://127.0.0.1:9/2/httpapi',
    maxCachedEvents: args.hold ? lines.length + 1 : args.flushSize,
    uploadIntervalInSec: UPLOAD_INTERVAL_S,
  };
  const client = Amplitude.init(args.apiKey, options);

  if (args.hold) {
    const before = rssKb();
    for (const line of lines) void client.logEvent(JSON.parse(line));
    const after = rssKb();
    report({ sdk: '@amplitude/node', version, held: lines.length, rss_before_kb: before, rss_after_kb: after });
    return;
  }

  let ok = 0;
  let failed = 0;
  const results = [];
  for (const line of lines) {
    results.push(
      client.logEvent(JSON.parse(line)).then(
        (r) => {
          if (r && r.statusCode === 200) ok++;
          else failed++;
        },
        () => failed++,
      ),
    );
  }
  await client.flush();
  await Promise.all(results);
  report({ sdk: '@amplitude/node', version, tracked: lines.length, sdk_ok: ok, sdk_failed: failed, options: { maxCachedEvents: options.maxCachedEvents, uploadIntervalInSec: UPLOAD_INTERVAL_S } });
});
