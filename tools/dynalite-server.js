// Starts dynalite (an in-memory DynamoDB-API server) on 127.0.0.1 for tests and benches.
// Usage: node dynalite-server.js [PORT] [--tls KEY.pem CERT.pem] [--table NAME]
//   PORT 0 or absent: any free port. --tls: serve HTTPS with that key and certificate.
//   --table: create a registration-keys table as FireFly's stack makes it (hash key `key`, S) first.
// Prints "listening PORT" once ready (and the table exists). Exits when its standard input
// closes, so a test process that dies, however it dies, never leaves a server behind.
'use strict'
const fs = require('fs')
const dynalite = require('dynalite')

const args = process.argv.slice(2)
let port = 0
let tls = null
let table = null
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--tls') {
    tls = { key: fs.readFileSync(args[i + 1]), cert: fs.readFileSync(args[i + 2]) }
    i += 2
  } else if (args[i] === '--table') {
    table = args[++i]
  } else {
    port = Number(args[i])
  }
}

const options = { createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 }
if (tls) Object.assign(options, { ssl: true, key: tls.key, cert: tls.cert, ca: tls.cert })
const server = dynalite(options)

function createTable (port, done) {
  const body = JSON.stringify({
    TableName: table,
    AttributeDefinitions: [{ AttributeName: 'key', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'key', KeyType: 'HASH' }],
    BillingMode: 'PAY_PER_REQUEST'
  })
  const client = tls ? require('https') : require('http')
  const req = client.request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/',
    rejectUnauthorized: false,
    headers: {
      'Content-Type': 'application/x-amz-json-1.0',
      'X-Amz-Target': 'DynamoDB_20120810.CreateTable',
      Authorization: 'AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
      'X-Amz-Date': '20260101T000000Z'
    }
  }, (res) => {
    let text = ''
    res.on('data', (d) => { text += d })
    res.on('end', () => done(res.statusCode === 200 ? null : new Error(`CreateTable answered ${res.statusCode}: ${text}`)))
  })
  req.on('error', done)
  req.end(body)
}

server.listen(port, '127.0.0.1', (err) => {
  if (err) {
    console.error(`dynalite: ${err.message}`)
    process.exit(1)
  }
  const actual = server.address().port
  const ready = (e) => {
    if (e) {
      console.error(`dynalite: ${e.message}`)
      process.exit(1)
    }
    console.log(`listening ${actual}`)
  }
  if (table) createTable(actual, ready)
  else ready()
})
process.stdin.on('end', () => process.exit(0))
process.stdin.on('error', () => process.exit(0))
process.stdin.resume()
