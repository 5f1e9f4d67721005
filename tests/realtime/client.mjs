// The official @supabase/realtime-js, driven from a test: subscribes as the arguments say and
// prints one JSON line per thing it sees ({"status"}, {"change"}, {"system"}, {"broadcast"}).
// Reads commands from stdin, one JSON object a line: {"auth": token}, {"send": {event, payload}}.
// Usage: node [--experimental-websocket on Node 20] client.mjs URL APIKEY TOKEN TOPIC BINDINGS_JSON
import { createRequire } from 'node:module'
import readline from 'node:readline'

const require = createRequire(process.env.NIMBUS_NODE_MODULES + '/')
const { RealtimeClient } = require('@supabase/realtime-js')

const [url, apikey, token, topic, bindingsJson] = process.argv.slice(2)
const out = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')
const client = new RealtimeClient(url + '/realtime/v1', { params: { apikey } })
await client.setAuth(token)
const channel = client.channel(topic, { config: { broadcast: { self: true } } })
for (const binding of JSON.parse(bindingsJson)) {
  channel.on('postgres_changes', binding, (payload) => out({ change: payload }))
}
channel.on('system', {}, (payload) => out({ system: payload }))
channel.on('broadcast', { event: '*' }, (payload) => out({ broadcast: payload }))
channel.subscribe((status, err) => out({ status, error: err ? String(err.message || err) : null }))

const input = readline.createInterface({ input: process.stdin })
input.on('line', async (line) => {
  const command = JSON.parse(line)
  if (command.auth) {
    await client.setAuth(command.auth)
    out({ authed: true })
  } else if (command.send) {
    const result = await channel.send({ type: 'broadcast', ...command.send })
    out({ sent: result })
  }
})
input.on('close', () => { client.disconnect(); process.exit(0) })
