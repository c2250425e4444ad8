// The server's JSON API. Every failure becomes an Error whose message is the
// server's own text ({"error": "..."}), so the page can show it as is.

async function answer(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    throw new Error(`${resp.status} ${resp.statusText}: the server's answer is not JSON`);
  }
  if (!resp.ok) throw new Error(body && body.error ? body.error : `${resp.status} ${resp.statusText}`);
  return body;
}

async function call(url, init) {
  let resp;
  try {
    resp = await fetch(url, init);
  } catch (e) {
    throw new Error(`cannot reach the server (${e.message}); is \`likeness serve\` still running?`);
  }
  return answer(resp);
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const getInfo = () => call('/info');

export const getItems = (offset, limit, label) => call(`/items${query({ offset, limit, label })}`);

export const getItem = (id) => call(`/items/${encodeURIComponent(id)}`);

export const searchItem = (id, { k, ef, labels }) =>
  call(`/search/item/${encodeURIComponent(id)}${query({ k, ef, labels })}`);

export const searchImage = (blob, { k, ef, labels, region }) =>
  call(`/search/image${query({ k, ef, labels, region })}`, {
    method: 'POST',
    headers: { 'Content-Type': blob.type || 'application/octet-stream' },
    body: blob,
  });

export const findFaces = (blob) =>
  call('/faces', {
    method: 'POST',
    headers: { 'Content-Type': blob.type || 'application/octet-stream' },
    body: blob,
  });

export const thumbUrl = (id, size, region) => `/items/${id}/image${query({ size, region })}`;
