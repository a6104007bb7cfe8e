'use strict';
// Shared command-line handling and measurements for the Node drivers of the peer benchmark.
const fs = require('fs');

function parseArgs(argv) {
  const args = { apiKey: 'peer-bench-key', flushSize: 1000, flushEvery: 0, hold: false, url: null, input: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--url') args.url = val();
    else if (a === '--input') args.input = val();
    else if (a === '--api-key') args.apiKey = val();
    else if (a === '--flush-size') args.flushSize = Number.parseInt(val(), 10);
    else if (a === '--flush-every') args.flushEvery = Number.parseInt(val(), 10);
    else if (a === '--hold') args.hold = true;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!args.input) throw new Error('--input is required');
  if (!args.hold && !args.url) throw new Error('--url is required unless --hold');
  if (args.url && !/^http:\/\/127\.0\.0\.1:\d+\//.test(args.url)) {
    throw new Error(`refusing a server URL that is not http://127.0.0.1:PORT/...: ${args.url}`);
  }
  if (!(args.flushSize > 0)) throw new Error('--flush-size must be a positive integer');
  if (!(args.flushEvery >= 0)) throw new Error('--flush-every must be a non-negative integer');
  return args;
}

/** The NDJSON file as an array of raw lines (strings), blank lines dropped. */
function readLines(path) {
  return fs.readFileSync(path, 'utf8').split('\n').filter((l) => l.length > 0);
}

/** Resident set size in KiB after a full garbage collection (needs --expose-gc). */
function rssKb() {
  if (typeof global.gc === 'function') {
    global.gc();
    global.gc();
  }
  return Math.round(process.memoryUsage().rss / 1024);
}

function report(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main(body) {
  try {
    await body(parseArgs(process.argv.slice(2)));
    process.exit(0);
  } catch (e) {
    process.stderr.write(`driver failed: ${e && e.stack ? e.stack : e}\n`);
    process.exit(1);
  }
}

module.exports = { parseArgs, readLines, rssKb, report, main };
