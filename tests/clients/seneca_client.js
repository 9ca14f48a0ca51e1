// A real Seneca HTTP client (seneca 3.38 + seneca-transport 8.3, pinned in node/package.json)
// for the gateway's tests: `node seneca_client.js <port> [pin] [act timeout ms]` sends through
// `seneca.client({type: 'http', host: '127.0.0.1', port, pin})` (no pin: every message). It
// reads one JSON message per stdin line, acts them one after another, and prints one line
// per message: `{"ok": <result>}` or `{"err": {"code": ..., "message": ...}}`. It prints
// `ready` once the client is set up and exits when stdin ends and the last act answered.
'use strict'

const path = require('path')
const readline = require('readline')
const Seneca = require(path.join(__dirname, 'node', 'node_modules', 'seneca'))

const port = parseInt(process.argv[2], 10)
const pin = process.argv[3] || undefined
const timeout = parseInt(process.argv[4] || '5000', 10)
if (!(port > 0)) {
  console.error('usage: node seneca_client.js <port> [pin] [act timeout ms]')
  process.exit(2)
}

// seneca 3.38 loads seneca-transport itself (legacy.transport defaults to true).
const seneca = Seneca({ log: 'silent', timeout: timeout, legacy: { transport: true } })
seneca.client({ type: 'http', host: '127.0.0.1', port: port, pin: pin })

function act(msg) {
  return new Promise((resolve) => {
    seneca.act(msg, (err, out) => {
      if (err) {
        resolve({ err: { code: err.code || null, message: err.message } })
      } else {
        resolve({ ok: out === undefined ? null : out })
      }
    })
  })
}

seneca.ready(async (err) => {
  if (err) {
    console.error('seneca failed to start: ' + err.message)
    process.exit(1)
  }
  console.log('ready')
  const lines = readline.createInterface({ input: process.stdin, terminal: false })
  for await (const line of lines) {
    if (!line.trim()) continue
    let msg
    try {
      msg = JSON.parse(line)
    } catch (e) {
      console.log(JSON.stringify({ err: { code: 'bad_input', message: e.message } }))
      continue
    }
    console.log(JSON.stringify(await act(msg)))
  }
  seneca.close(() => process.exit(0))
  // close may wait on transports; do not outlive stdin by more than a moment.
  setTimeout(() => process.exit(0), 1000).unref()
})
