// Contacts (the roster the directory keeps: group colleagues), their presence, the directory
// search (XEP-0055 at the server), and file sharing (XEP-0363 through upload.DOMAIN).

import { $iq, NS, bare, child, children, text } from './xmpp.js';

const SHOW_LABELS = { '': 'Available', chat: 'Available', dnd: 'Busy', away: 'Not Available', xa: 'Not Available' };

export class Contacts {
  /** deps: xmpp, listEl, resultsEl, openChat(jid, name) */
  constructor(deps) {
    Object.assign(this, deps);
    this.items = new Map();
    this.presence = new Map();
  }

  nameOf(jid) {
    return this.items.get(jid)?.name || jid.split('@')[0];
  }

  async load() {
    const result = await this.xmpp.iq($iq({ type: 'get' }).c('query', { xmlns: NS.roster }));
    for (const item of children(child(result, 'query', NS.roster), 'item', NS.roster)) this.setItem(item);
    this.render();
  }

  setItem(item) {
    const jid = item.getAttribute('jid');
    if (item.getAttribute('subscription') === 'remove') this.items.delete(jid);
    else this.items.set(jid, { jid, name: item.getAttribute('name') || jid.split('@')[0], group: text(item, 'group', NS.roster) });
  }

  /** A roster push (RFC 6121 §2.1.6): apply it and answer. */
  push(iq) {
    if (iq.getAttribute('from') && bare(iq.getAttribute('from')) !== bare(this.xmpp.jid)) return;
    for (const item of children(child(iq, 'query', NS.roster), 'item', NS.roster)) this.setItem(item);
    this.xmpp.send($iq({ type: 'result', id: iq.getAttribute('id') }));
    this.render();
  }

  onPresence(p) {
    const from = bare(p.getAttribute('from'));
    if (!this.items.has(from)) return;
    const type = p.getAttribute('type');
    if (type && type !== 'unavailable') return;
    this.presence.set(from, type === 'unavailable' ? 'Offline' : (SHOW_LABELS[text(p, 'show')] ?? 'Available'));
    this.render();
  }

  render() {
    const sorted = [...this.items.values()].sort((a, b) => a.name.localeCompare(b.name));
    this.listEl.replaceChildren(...sorted.map((c) => this.row(c.jid, c.name, this.presence.get(c.jid) || 'Offline', c.group)));
  }

  row(jid, name, status, group) {
    const li = document.createElement('li');
    const b = document.createElement('button');
    b.type = 'button';
    b.dataset.jid = jid;
    b.textContent = `${name}${group ? ` (${group})` : ''}`;
    b.setAttribute('aria-label', `Message ${name}${status ? `, ${status}` : ''}`);
    b.addEventListener('click', () => this.openChat(jid, name));
    li.append(b);
    if (status) {
      const s = document.createElement('span');
      s.className = 'presence';
      s.textContent = status;
      li.append(s);
    }
    return li;
  }

  /** Search the directory by first name, last name or user name (three queries, merged). */
  async search(query) {
    const q = query.trim();
    if (!q) {
      this.resultsEl.replaceChildren();
      return 0;
    }
    const found = new Map();
    await Promise.all(['first', 'last', 'nick'].map(async (field) => {
      try {
        const r = await this.xmpp.iq($iq({ type: 'set', to: this.xmpp.domain }).c('query', { xmlns: NS.search }).c(field).t(q));
        for (const item of children(child(r, 'query', NS.search), 'item', NS.search)) {
          const name = `${text(item, 'first', NS.search)} ${text(item, 'last', NS.search)}`.trim();
          found.set(item.getAttribute('jid'), name || item.getAttribute('jid'));
        }
      } catch {
        // a field the server refuses (too long) finds nothing
      }
    }));
    const rows = [...found.entries()].sort((a, b) => a[1].localeCompare(b[1]));
    this.resultsEl.replaceChildren(...rows.map(([jid, name]) => this.row(jid, name, '', '')));
    if (!rows.length) {
      const li = document.createElement('li');
      li.textContent = 'Nobody found.';
      this.resultsEl.append(li);
    }
    return rows.length;
  }
}

/** Share a file: a slot from upload.DOMAIN (XEP-0363), the PUT, then its GET URL. */
export async function uploadFile(xmpp, file) {
  const slotIq = $iq({ type: 'get', to: `upload.${xmpp.domain}` }).c('request', {
    xmlns: NS.upload, filename: file.name, size: String(file.size), 'content-type': file.type || 'application/octet-stream',
  });
  const result = await xmpp.iq(slotIq);
  const slot = child(result, 'slot', NS.upload);
  const put = child(slot, 'put', NS.upload);
  const get = child(slot, 'get', NS.upload);
  if (!put || !get) throw new Error('the upload service gave no slot');
  const headers = { 'Content-Type': file.type || 'application/octet-stream' };
  for (const h of children(put, 'header', NS.upload)) {
    if (['authorization', 'cookie', 'expires'].includes(h.getAttribute('name').toLowerCase())) {
      headers[h.getAttribute('name')] = h.textContent;
    }
  }
  const response = await fetch(put.getAttribute('url'), { method: 'PUT', body: file, headers });
  if (!response.ok) throw new Error(`the upload was refused (${response.status})`);
  return get.getAttribute('url');
}
