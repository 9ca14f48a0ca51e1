// A real Seneca HTTP listener (seneca 3.38 + seneca-transport 8.3, pinned in node/package.json) for
// the gateway's tests: `node seneca_service.js <port> [tag]` listens on 127.0.0.1:<port> at /act,
// prints `listening <port>` once ready and exits when stdin closes (so the test owns its lifetime).
//
// Without a port argument it runs as a service the host supervises: the port comes from
// PORTS and it ignores stdin. Actions: role:greet ({greeting}); role:math,cmd:sum ({answer: left+right}); role:math,cmd:fail (throws `bad-wire`);
// the seed-004 user service module:user,if:list|load|edit|create|delete, which reads
// msg.args.params.id and msg.args.body.name as seneca-web hands them over. Every reply carries
// `served_by: <tag>` so a test can tell instances apart.
'use strict'

const path = require('path')
const NODE_DIR = path.join(__dirname, 'node')
const Seneca = require(path.join(NODE_DIR, 'node_modules', 'seneca'))

// Supervised by the host (no port argument): the port comes from PORTS, and the host's
// signals, not stdin, end it.
const supervised = !process.argv[2]
const port = parseInt(process.argv[2] || (process.env.PORTS || '').split(' ')[0], 10)
const tag = process.argv[3] || 'seneca-' + port
if (!(port > 0)) {
  console.error('usage: node seneca_service.js <port> [tag]')
  process.exit(2)
}

// seneca 3.38 loads seneca-transport itself (option legacy.transport defaults to true), which
// registers the `http` (alias of `web`) transport type; no explicit .use() is needed or wanted.
const seneca = Seneca({ log: 'silent', legacy: { transport: true } })

const users = [
  { id: '1', name: 'alice' },
  { id: '2', name: 'bob' },
]

seneca.add('role:math,cmd:sum', function (msg, reply) {
  reply(null, { answer: Number(msg.left) + Number(msg.right), served_by: tag })
})

seneca.add('role:greet', function (msg, reply) {
  reply(null, { greeting: 'hello ' + msg.name, served_by: tag })
})

seneca.add('role:math,cmd:fail', function (msg, reply) {
  throw new Error('bad-wire')
})

seneca.add('module:user,if:list', function (msg, reply) {
  reply(null, users.map((u) => ({ ...u, served_by: tag })))
})

seneca.add('module:user,if:load', function (msg, reply) {
  const id = msg.args && msg.args.params && msg.args.params.id
  const user = users.find((u) => u.id === id)
  reply(null, user ? { ...user, served_by: tag } : { error: 'not found', id: id, served_by: tag })
})

seneca.add('module:user,if:create', function (msg, reply) {
  const name = msg.args && msg.args.body && msg.args.body.name
  const user = { id: String(users.length + 1), name: name }
  users.push(user)
  reply(null, { ...user, served_by: tag })
})

seneca.add('module:user,if:edit', function (msg, reply) {
  const id = msg.args && msg.args.params && msg.args.params.id
  const name = msg.args && msg.args.body && msg.args.body.name
  const user = users.find((u) => u.id === id)
  if (user) user.name = name
  reply(null, user ? { ...user, served_by: tag } : { error: 'not found', id: id, served_by: tag })
})

seneca.add('module:user,if:delete', function (msg, reply) {
  const id = msg.args && msg.args.params && msg.args.params.id
  const at = users.findIndex((u) => u.id === id)
  const gone = at >= 0 ? users.splice(at, 1) : []
  reply(null, { deleted: gone.length, id: id, served_by: tag })
})

seneca.listen({ type: 'http', host: '127.0.0.1', port: port })

seneca.ready(function (err) {
  if (err) {
    console.error('seneca failed to start: ' + err.message)
    process.exit(1)
  }
  console.log('listening ' + port)
})

if (!supervised) {
  process.stdin.on('end', () => process.exit(0))
  process.stdin.on('close', () => process.exit(0))
  process.stdin.resume()
}
