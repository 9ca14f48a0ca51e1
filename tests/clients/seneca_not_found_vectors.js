// Asks the real seneca (3.38, pinned in node/package.json) what its `act_not_found` error
// says for messages no action matches, so the gateway's copy of that text
// (modules/gateway/src/seneca/reply.rs, util.inspect in js.rs) can be checked against it.
// stdin: a JSON array of messages; stdout: a JSON array of the error messages, in order.
'use strict'

const path = require('path')
const Seneca = require(path.join(__dirname, 'node', 'node_modules', 'seneca'))

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => (input += chunk))
process.stdin.on('end', () => {
  const messages = JSON.parse(input)
  const seneca = Seneca({ log: 'silent' })
  seneca.ready(async (err) => {
    if (err) throw err
    const texts = []
    for (const msg of messages) {
      texts.push(
        await new Promise((resolve) =>
          seneca.act(msg, (e) => resolve(e ? e.message : 'no error for ' + JSON.stringify(msg))),
        ),
      )
    }
    process.stdout.write(JSON.stringify(texts) + '\n')
    process.exit(0)
  })
})
