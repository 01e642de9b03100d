// Starts dynalite (an in-memory DynamoDB-API server) on 127.0.0.1 for the tests.
// Usage: node dynalite-server.js [PORT]   (0 or nothing: any free port)
// Prints "listening PORT" once ready. Exits when its standard input closes, so a test
// process that dies, however it dies, never leaves a server behind.
'use strict'
const dynalite = require('dynalite')

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 })
server.listen(Number(process.argv[2] || 0), '127.0.0.1', (err) => {
  if (err) {
    console.error(`dynalite: ${err.message}`)
    process.exit(1)
  }
  console.log(`listening ${server.address().port}`)
})
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()
