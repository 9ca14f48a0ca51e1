// Asks the real patrun (7.3, pinned in node/package.json) which pattern it picks, so the
// gateway's Rust port (modules/gateway/src/seneca/patrun.rs) can be checked against it.
// stdin: a JSON array of {patterns: [object...], subjects: [object...]}; stdout: a JSON
// array with, per entry, an array holding for each subject the index of the pattern
// found, or null. Patterns are added in order with their index as data, as seneca adds
// actions: `Patrun({gex: true})`.
'use strict'

const path = require('path')
const { Patrun } = require(path.join(__dirname, 'node', 'node_modules', 'patrun'))

let input = ''
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk) => (input += chunk))
process.stdin.on('end', () => {
  const vectors = JSON.parse(input)
  const results = vectors.map(({ patterns, subjects }) => {
    const router = Patrun({ gex: true })
    patterns.forEach((pattern, index) => router.add(pattern, { index }))
    return subjects.map((subject) => {
      const found = router.find(subject)
      return found ? found.index : null
    })
  })
  process.stdout.write(JSON.stringify(results) + '\n')
})
