// Conversations: 1:1 chats, directory groups (<slug>@groups.DOMAIN) and rooms (XEP-0045).
//
// Every message sent carries an origin-id (XEP-0359), a receipt request (XEP-0184) and is markable
// (XEP-0333); with "Ask for acknowledgement" it is acknowledgeable (urn:carewire:ack:0). The sender
// sees per recipient: sent, received, displayed, acknowledged. Expired messages leave the screen:
// on the server's retraction (XEP-0424, XEP-0425 in rooms), on the conversation's <expired/>
// notice, and at the time of the <expires/> hint even if the retraction never comes.

import { $iq, $msg, $pres, NS, bare, child, newId, text } from './xmpp.js';

const HISTORY_MAX = 500;
const PAGE = 100;
const STATE_ORDER = ['sent', 'received', 'displayed', 'acknowledged'];
const IMAGE = /\.(png|jpe?g|gif|webp)$/i;

function kindOf(jid, domain) {
  const host = jid.split('@')[1] || '';
  if (host === `chat.${domain}`) return 'room';
  if (host === `groups.${domain}`) return 'group';
  return 'chat';
}

export class Chats {
  /** deps: xmpp, listEl, messagesEl, titleEl, paneEl, unreadEl, announce(text), nameOf(jid), onJoin(jid, title) */
  constructor(deps) {
    Object.assign(this, deps);
    this.conversations = new Map();
    this.current = null;
    this.expiryTimers = new Map();
    document.addEventListener('visibilitychange', () => this.markDisplayed());
  }

  conversation(jid, title) {
    let c = this.conversations.get(jid);
    if (!c) {
      const kind = kindOf(jid, this.xmpp.domain);
      c = { jid, kind, title: title || this.nameOf(jid), messages: new Map(), unread: 0, loaded: false, joined: false };
      this.conversations.set(jid, c);
      this.renderList();
    } else if (title && c.title === jid) {
      c.title = title;
      this.renderList();
    }
    return c;
  }

  renderList() {
    this.listEl.replaceChildren(...[...this.conversations.values()].map((c) => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.jid = c.jid;
      b.textContent = `${c.title}${c.kind === 'chat' ? '' : ` (${c.kind})`}`;
      if (c.unread) b.textContent += ` \u2013 ${c.unread} unread`;
      b.addEventListener('click', () => this.open(c.jid));
      li.append(b);
      return li;
    }));
    const unread = [...this.conversations.values()].reduce((n, c) => n + c.unread, 0);
    this.unreadEl.textContent = String(unread);
  }

  async open(jid, title) {
    const c = this.conversation(jid, title);
    this.current = c;
    c.unread = 0;
    this.paneEl.hidden = false;
    this.titleEl.textContent = c.title;
    this.renderList();
    if (c.kind === 'room' && !c.joined) this.join(c);
    if (!c.loaded && c.kind !== 'group') {
      c.loaded = true;
      await this.loadHistory(c);
    }
    this.renderMessages();
    this.markDisplayed();
    document.getElementById('message').focus();
  }

  join(c) {
    c.joined = true;
    this.onJoin?.(c.jid, c.title);
    const nick = nodeOf(this.xmpp.jid);
    this.xmpp.send($pres({ to: `${c.jid}/${nick}` }).c('x', { xmlns: NS.muc }).c('history', { maxstanzas: '50' }));
  }

  /** A room's presence: a room this user has just created (status 201) is accepted as an instant
   *  room (XEP-0045 §10.1.2), else it would stay locked to everyone else. Joining is announced. */
  presence(p) {
    const room = bare(p.getAttribute('from'));
    if (this.conversations.get(room)?.kind !== 'room' || p.getAttribute('type')) return;
    const x = child(p, 'x', NS.mucUser);
    const codes = new Set([...(x?.children || [])].filter((c) => c.localName === 'status').map((c) => c.getAttribute('code')));
    if (!codes.has('110')) return;
    const title = this.conversations.get(room).title;
    if (!codes.has('201')) return this.announce(`Joined ${title}.`);
    this.xmpp.iq($iq({ type: 'set', to: room }).c('query', { xmlns: NS.mucOwner }).c('x', { xmlns: NS.data, type: 'submit' }))
      .then(() => this.announce(`Joined ${title}.`), (err) => this.announce(`The room could not be opened: ${err.message}`));
  }

  /** The archive (XEP-0313), newest pages first, at most HISTORY_MAX messages. */
  async loadHistory(c) {
    const started = performance.now();
    let before = '';
    let fetched = 0;
    for (;;) {
      const queryid = newId();
      const found = [];
      const handler = this.xmpp.conn.addHandler((m) => {
        const result = child(m, 'result', NS.mam);
        if (!result || result.getAttribute('queryid') !== queryid) return true;
        const fwd = child(result, 'forwarded', NS.forward);
        const inner = child(fwd, 'message');
        const delay = child(fwd, 'delay', NS.delay);
        if (inner) found.push({ inner, id: result.getAttribute('id'), stamp: delay?.getAttribute('stamp') });
        return true;
      }, NS.mam, 'message');
      const to = c.kind === 'room' ? c.jid : undefined;
      const iq = $iq({ type: 'set', to }).c('query', { xmlns: NS.mam, queryid })
        .c('x', { xmlns: NS.data, type: 'submit' })
        .c('field', { var: 'FORM_TYPE', type: 'hidden' }).c('value').t(NS.mam).up().up();
      if (c.kind === 'chat') iq.c('field', { var: 'with' }).c('value').t(c.jid).up().up();
      iq.up().c('set', { xmlns: NS.rsm }).c('max').t(String(PAGE)).up().c('before').t(before);
      let result;
      try {
        result = await this.xmpp.iq(iq);
      } catch {
        this.xmpp.conn.deleteHandler(handler);
        break;
      } finally {
        this.xmpp.conn.deleteHandler(handler);
      }
      for (const f of found) this.ingest(f.inner, { archiveId: f.id, stamp: f.stamp, isHistory: true });
      fetched += found.length;
      const fin = child(result, 'fin', NS.mam);
      const first = text(child(fin, 'set', NS.rsm), 'first', NS.rsm);
      if (!found.length || fin?.getAttribute('complete') === 'true' || !first || fetched >= HISTORY_MAX) break;
      before = first;
    }
    window.carewireStats?.historyLoaded?.(fetched, performance.now() - started);
  }

  /** Send a text (and optionally a shared file's URL) to the open conversation. */
  send(body, { ackable = false, url = '' } = {}) {
    const c = this.current;
    if (!c || !body) return;
    const id = newId();
    const type = c.kind === 'room' ? 'groupchat' : 'chat';
    const m = $msg({ to: c.jid, type, id }).c('body').t(body).up()
      .c('origin-id', { xmlns: NS.sid, id }).up()
      .c('request', { xmlns: NS.receipts }).up()
      .c('markable', { xmlns: NS.markers }).up();
    if (ackable) m.c('acknowledgeable', { xmlns: NS.ack }).up();
    if (url) m.c('x', { xmlns: NS.oob }).c('url').t(url).up().up();
    this.xmpp.send(m);
    if (c.kind !== 'room') {
      const states = new Map();
      if (c.kind === 'chat') states.set(c.jid, 'sent');
      this.add(c, { key: id, id, body, url, from: bare(this.xmpp.jid), out: true, at: Date.now(), ackable, states });
    }
  }

  /** A message stanza with a body (live, offline, carbon or from the archive). */
  ingest(stanza, { archiveId = '', stamp = '', isHistory = false, isSentCarbon = false } = {}) {
    const me = bare(this.xmpp.jid);
    const from = stanza.getAttribute('from') || '';
    const type = stanza.getAttribute('type') || 'normal';
    const body = text(stanza, 'body');
    if (!body) return;
    const isRoom = type === 'groupchat';
    const out = isSentCarbon || (!isRoom && bare(from) === me);
    const peer = isRoom ? bare(from) : out ? bare(stanza.getAttribute('to')) : bare(from);
    if (!peer || peer === this.xmpp.domain) return;
    const c = this.conversation(peer);
    const sid = [...stanza.getElementsByTagNameNS(NS.sid, 'stanza-id')]
      .find((s) => !s.getAttribute('by') || bare(s.getAttribute('by')) === (isRoom ? peer : me));
    const origin = child(stanza, 'origin-id', NS.sid)?.getAttribute('id') || '';
    const id = stanza.getAttribute('id') || origin;
    const stanzaId = archiveId || sid?.getAttribute('id') || '';
    const nick = isRoom ? resourceOf(from) : '';
    const isOwnRoom = isRoom && nick === nodeOf(me);
    const delay = child(stanza, 'delay', NS.delay)?.getAttribute('stamp') || stamp;
    const expires = child(stanza, 'expires', NS.expiry)?.getAttribute('at');
    const key = origin || id || stanzaId;
    const existing = c.messages.get(key) || [...c.messages.values()].find((m) => stanzaId && m.stanzaId === stanzaId);
    if (existing) {
      existing.stanzaId ||= stanzaId;
      return;
    }
    const msg = {
      key, id, origin, stanzaId, body, from: isRoom ? `${nick}` : bare(from), out: out || isOwnRoom,
      at: delay ? Date.parse(delay) : Date.now(), url: text(child(stanza, 'x', NS.oob), 'url'),
      ackable: !!child(stanza, 'acknowledgeable', NS.ack) && !!child(stanza, 'markable', NS.markers),
      markable: !!child(stanza, 'markable', NS.markers), isRoom, states: new Map(), acked: false,
      displayedSent: isHistory,
    };
    if (!msg.out && !isHistory && child(stanza, 'request', NS.receipts) && !isRoom) {
      this.xmpp.send($msg({ to: from, id: newId() }).c('received', { xmlns: NS.receipts, id: id || stanzaId }));
    }
    if (expires) this.expireAt(c, key, Date.parse(expires));
    this.add(c, msg, isHistory);
  }

  add(c, msg, quiet = false) {
    c.messages.set(msg.key, msg);
    if (quiet) return;
    if (this.current === c) {
      this.messagesEl.append(this.renderMessage(msg));
      this.markDisplayed();
      if (!msg.out) this.announce(`${msg.from}: ${msg.body}`);
    } else if (!msg.out) {
      c.unread += 1;
      this.renderList();
      this.announce(`New message from ${c.title}`);
    }
  }

  renderMessages() {
    const c = this.current;
    const started = performance.now();
    const frag = document.createDocumentFragment();
    [...c.messages.values()].sort((a, b) => a.at - b.at).forEach((m) => frag.append(this.renderMessage(m)));
    this.messagesEl.replaceChildren(frag);
    this.messagesEl.scrollTop = this.messagesEl.scrollHeight;
    window.carewireStats?.rendered?.(c.messages.size, performance.now() - started);
  }

  renderMessage(m) {
    const li = document.createElement('li');
    li.className = m.out ? 'out' : 'in';
    li.dataset.key = m.key;
    const meta = document.createElement('div');
    meta.className = 'meta';
    meta.textContent = `${m.out ? 'You' : this.nameOf(m.from)}, ${new Date(m.at).toLocaleTimeString()}`;
    const body = document.createElement('div');
    body.className = 'body';
    body.textContent = m.body;
    li.append(meta, body);
    if (m.url && IMAGE.test(new URL(m.url, location.href).pathname)) {
      const img = document.createElement('img');
      img.src = m.url;
      img.alt = `Shared image ${decodeURIComponent(m.url.split('/').pop())}`;
      img.loading = 'lazy';
      li.append(img);
    }
    if (m.out) {
      const states = document.createElement('p');
      states.className = 'states';
      li.append(states);
      this.renderStates(m, li);
    } else if (m.ackable) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'ack';
      b.textContent = m.acked ? 'Acknowledged' : 'Acknowledge';
      b.disabled = m.acked;
      b.addEventListener('click', () => this.acknowledge(m, b));
      li.append(b);
    }
    return li;
  }

  renderStates(m, li = this.messagesEl.querySelector(`li[data-key="${CSS.escape(m.key)}"]`)) {
    const el = li?.querySelector('.states');
    if (!el) return;
    el.replaceChildren(...[...m.states.entries()].map(([jid, state]) => {
      const span = document.createElement('span');
      span.className = 'state';
      span.dataset.recipient = jid;
      span.dataset.state = state;
      span.textContent = `${this.nameOf(jid)}: ${state}${m.ackable && state !== 'acknowledged' ? ' (acknowledgement asked)' : ''} `;
      return span;
    }));
    if (!m.states.size) el.textContent = 'sent';
  }

  acknowledge(m, button) {
    const to = m.isRoom ? this.current.jid : m.from;
    this.xmpp.send($msg({ to, type: m.isRoom ? 'groupchat' : 'chat', id: newId() })
      .c('acknowledged', { xmlns: NS.markers, id: m.isRoom ? m.stanzaId : (m.id || m.stanzaId) }));
    m.acked = true;
    button.textContent = 'Acknowledged';
    button.disabled = true;
  }

  /** Send displayed markers for what is on screen in a visible tab. */
  markDisplayed() {
    const c = this.current;
    if (!c || document.visibilityState !== 'visible' || this.paneEl.hidden) return;
    for (const m of c.messages.values()) {
      if (m.out || m.displayedSent || !m.markable) continue;
      m.displayedSent = true;
      const id = m.isRoom ? m.stanzaId : (m.id || m.stanzaId);
      const to = m.isRoom ? c.jid : m.from;
      this.xmpp.send($msg({ to, type: m.isRoom ? 'groupchat' : 'chat', id: newId() })
        .c('displayed', { xmlns: NS.markers, id }));
    }
  }

  /** A receipt or marker about one of our messages: raise that recipient's state. */
  delivery(from, id, state) {
    const who = bare(from);
    for (const c of this.conversations.values()) {
      const m = c.messages.get(id) || [...c.messages.values()].find((x) => x.stanzaId === id && x.out);
      if (!m || !m.out) continue;
      const before = STATE_ORDER.indexOf(m.states.get(who) || 'sent');
      if (STATE_ORDER.indexOf(state) > before) m.states.set(who, state);
      if (this.current === c) this.renderStates(m);
      return;
    }
  }

  /** Remove a message (retracted or expired) everywhere. */
  remove(peer, id) {
    const c = this.conversations.get(peer);
    if (!c) return;
    const m = c.messages.get(id) || [...c.messages.values()].find((x) => x.stanzaId === id || x.id === id);
    if (!m) return;
    c.messages.delete(m.key);
    this.messagesEl.querySelector(`li[data-key="${CSS.escape(m.key)}"]`)?.remove();
  }

  /** The conversation expired on the server: every message leaves the screen. */
  expired(jid1, jid2) {
    const me = bare(this.xmpp.jid);
    const peer = jid2 === 'ROOM' ? jid1 : (jid1 === me ? jid2 : jid1);
    const c = this.conversations.get(peer);
    if (!c) return;
    c.messages.clear();
    if (this.current === c) this.messagesEl.replaceChildren();
    this.announce(`The conversation with ${c.title} expired`);
  }

  expireAt(c, key, at) {
    const delay = at - Date.now();
    if (Number.isNaN(delay)) return;
    // setTimeout's limit is about 24.8 days; a longer wait is re-armed on the next sign-in.
    if (delay > 2 ** 31 - 1) return;
    this.expiryTimers.set(key, setTimeout(() => this.remove(c.jid, key), Math.max(0, delay)));
  }

  stop() {
    this.expiryTimers.forEach((t) => clearTimeout(t));
  }
}

function nodeOf(jid) {
  return (jid || '').split('@')[0];
}

function resourceOf(jid) {
  const i = (jid || '').indexOf('/');
  return i < 0 ? '' : jid.slice(i + 1);
}
