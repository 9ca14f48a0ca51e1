#!/usr/bin/env node
// Drives the real npm client `ctrip-apollo` (4.x, installed into tests/clients/node by
// .ci/node-clients-up.sh) for tests/tests/it/module_config.rs, with the client's own
// defaults (long polling on, 70 s poll timeout, notification ids starting at 0, no
// periodic fetch). Prints one JSON line per event on stdout:
//   {"event":"ready","namespace":NS,"config":{...}}            ready() resolved
//   {"event":"change"|"add"|"delete","namespace":NS,"key":K,...} the client's own events
//   {"event":"updated","namespace":NS,"config":{...}}          after every applied change
//   {"event":"saved","namespace":NS}                           cache file written
//   {"event":"fetch-error","namespace":NS,"code":C,"message":M}
//   {"event":"error","namespace":NS,"code":C,"codes":[...],"message":M}  ready() rejected
//   {"event":"debug","message":M}  the client's debuglog lines (run with NODE_DEBUG=ctrip-apollo):
//                                  "polling: no changes, start polling again" marks a 304
// Options (argv `--name=value`, else the environment variable):
//   --host        APOLLO_HOST        config service base URL, e.g. http://127.0.0.1:PORT/api/module/config
//   --app-id      APOLLO_APP_ID
//   --cluster     APOLLO_CLUSTER     (default: the client's, "default")
//   --namespace   APOLLO_NAMESPACE   comma list (default: the client's, "application")
//   --cache-path  APOLLO_CACHE_PATH  the client's cachePath (no disk cache without it)
//   --ip          APOLLO_IP          the client's ip option (gray rules match on it)
//   --max-secs    APOLLO_MAX_SECS    exits after this long (default 300)
// Exits when its stdin closes, so a test that dies takes its clients with it.
'use strict'

const path = require('path')
const {createRequire} = require('module')

const requireClient = createRequire(path.join(__dirname, 'node', 'package.json'))
const apollo = requireClient('ctrip-apollo')

const emit = object => {
  process.stdout.write(`${JSON.stringify(object)}\n`)
}

// ctrip-apollo logs through util.debuglog, which writes "CTRIP-APOLLO <pid>: msg" to
// stderr: turn those lines into events so a test reads one ordered stream.
const writeStderr = process.stderr.write.bind(process.stderr)
process.stderr.write = (chunk, ...rest) => {
  const text = String(chunk)
  const match = /^CTRIP-APOLLO \d+: ([\s\S]*?)\n?$/.exec(text)
  if (match) {
    emit({event: 'debug', message: match[1]})
    return true
  }
  return writeStderr(chunk, ...rest)
}

const args = {}
for (const arg of process.argv.slice(2)) {
  const match = /^--([a-z-]+)=([\s\S]*)$/.exec(arg)
  if (!match) {
    writeStderr(`ctrip_apollo_client: unexpected argument ${arg}\n`)
    process.exit(2)
  }
  args[match[1]] = match[2]
}
const option = (name, env) => (name in args ? args[name] : process.env[env])

const host = option('host', 'APOLLO_HOST')
const appId = option('app-id', 'APOLLO_APP_ID')
if (!host || !appId) {
  writeStderr('ctrip_apollo_client: --host and --app-id (or APOLLO_HOST, APOLLO_APP_ID) are required\n')
  process.exit(2)
}
const options = {host, appId}
const cluster = option('cluster', 'APOLLO_CLUSTER')
if (cluster) options.cluster = cluster
const cachePath = option('cache-path', 'APOLLO_CACHE_PATH')
if (cachePath) options.cachePath = cachePath
const ip = option('ip', 'APOLLO_IP')
if (ip) options.ip = ip
const namespaces = (option('namespace', 'APOLLO_NAMESPACE') || 'application').split(',')
const maxSecs = Number(option('max-secs', 'APOLLO_MAX_SECS') || 300)

const errorFields = err => ({
  code: err && err.code,
  codes: err && err.codes,
  message: err && err.message
})

const app = apollo(options)
for (const name of namespaces) {
  const ns = app.namespace(name)
  ns.on('change', ({key, oldValue, newValue}) => emit({event: 'change', namespace: name, key, oldValue, newValue}))
  ns.on('add', ({key, value}) => emit({event: 'add', namespace: name, key, value}))
  ns.on('delete', ({key, value}) => emit({event: 'delete', namespace: name, key, value}))
  ns.on('updated', ({newConfig}) => emit({event: 'updated', namespace: name, config: newConfig}))
  ns.on('saved', () => emit({event: 'saved', namespace: name}))
  ns.on('save-error', err => emit({event: 'save-error', namespace: name, ...errorFields(err)}))
  ns.on('fetch-error', err => emit({event: 'fetch-error', namespace: name, ...errorFields(err)}))
  ns.ready().then(
    () => emit({event: 'ready', namespace: name, config: ns.config()}),
    err => emit({event: 'error', namespace: name, ...errorFields(err)})
  )
}

// Bounded lifetime: never outlive the test that started it.
process.stdin.on('data', () => {})
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
setTimeout(() => process.exit(0), maxSecs * 1000).unref()
