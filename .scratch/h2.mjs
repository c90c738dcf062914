import http2 from 'node:http2';
import net from 'node:net';
let errs = 0;
const orig = Error.captureStackTrace;
Error.captureStackTrace = function (o, ...a) { if (o && o.code === 'ERR_STREAM_DESTROYED') { errs++; if (errs === 1) console.log(new Error('here').stack); } return orig.call(this, o, ...a); };
const server = http2.createServer();
server.on('stream', (stream) => {
  const onR = () => { const c = stream.read(); if (c) { stream.off('readable', onR); stream.off('close', onR); stream.respond({ ':status': 200 }); stream.end(Buffer.from('hello')); } };
  stream.on('readable', onR); stream.on('close', onR); stream.on('end', onR);
});
server.listen(0, async () => {
  const c = http2.connect(`http://127.0.0.1:${server.address().port}`);
  for (let i = 0; i < 100; i++) {
    await new Promise((res) => { const r = c.request({ ':method': 'POST', ':path': '/' }); r.end('x'); r.on('data', () => {}); r.on('close', res); });
  }
  console.log('ERR_STREAM_DESTROYED created:', errs);
  process.exit(0);
});
