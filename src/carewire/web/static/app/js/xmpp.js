// The XMPP connection of the web client: strophe.js over the server's WebSocket (RFC 7395).
//
// strophe.js (vendor/strophe.umd.min.js, MIT) does the framing, SASL (SCRAM-SHA-256, SCRAM-SHA-1,
// PLAIN) and resource binding; this module adds what the client needs on top: a promise-based
// IQ call, the `sendIq(xmlString)` adapter the Web Push module expects, and a stable resource per
// browser (the server names devices by their resource).

// The UMD file defines `Strophe` and the stanza builders as globals (it replaces its module
// object on `globalThis.Strophe` with the Strophe namespace itself).
const lib = globalThis.Strophe;
export const Strophe = lib.Connection ? lib : lib.Strophe;
export const { $msg, $iq, $pres, $build } = lib.$msg ? lib : globalThis;

export const NS = {
  alert: 'urn:carewire:alert:0',
  settings: 'urn:carewire:settings:0',
  patient: 'urn:carewire:patient:0',
  conversation: 'urn:carewire:conversation:0',
  expiry: 'urn:carewire:expiry:0',
  ack: 'urn:carewire:ack:0',
  receipts: 'urn:xmpp:receipts',
  markers: 'urn:xmpp:chat-markers:0',
  sid: 'urn:xmpp:sid:0',
  retract: 'urn:xmpp:message-retract:1',
  carbons: 'urn:xmpp:carbons:2',
  forward: 'urn:xmpp:forward:0',
  delay: 'urn:xmpp:delay',
  mam: 'urn:xmpp:mam:2',
  rsm: 'http://jabber.org/protocol/rsm',
  data: 'jabber:x:data',
  roster: 'jabber:iq:roster',
  search: 'jabber:iq:search',
  muc: 'http://jabber.org/protocol/muc',
  mucUser: 'http://jabber.org/protocol/muc#user',
  mucOwner: 'http://jabber.org/protocol/muc#owner',
  conference: 'jabber:x:conference',
  upload: 'urn:xmpp:http:upload:0',
  oob: 'jabber:x:oob',
};

const IQ_TIMEOUT_MS = 15000;

/** A child element of `el` by local name and namespace (direct children only), or null. */
export function child(el, name, ns) {
  if (!el) return null;
  for (const c of el.children) {
    if (c.localName === name && (!ns || c.namespaceURI === ns || c.getAttribute('xmlns') === ns)) return c;
  }
  return null;
}

/** Every direct child of `el` in namespace `ns` named `name`. */
export function children(el, name, ns) {
  if (!el) return [];
  return [...el.children].filter((c) => c.localName === name && (!ns || c.namespaceURI === ns));
}

/** The text of a direct child, or ''. */
export function text(el, name, ns) {
  const c = child(el, name, ns);
  return c ? c.textContent : '';
}

export function bare(jid) {
  return jid ? Strophe.getBareJidFromJid(jid) : '';
}

export function newId() {
  return crypto.randomUUID();
}

function stableResource() {
  let id = localStorage.getItem('carewire.resource');
  if (!id) {
    id = `web-${newId().slice(0, 8)}`;
    localStorage.setItem('carewire.resource', id);
  }
  return id;
}

/** The error text of an IQ error stanza (the server's <text/>, else the condition). */
export function errorText(stanza) {
  if (!stanza) return 'no answer from the server';
  const error = stanza.getElementsByTagName('error')[0];
  if (!error) return 'error';
  const t = error.getElementsByTagName('text')[0];
  if (t && t.textContent) return t.textContent;
  const cond = [...error.children].find((c) => c.localName !== 'text');
  return cond ? cond.localName : 'error';
}

export class Xmpp {
  constructor(domain, websocketUrl) {
    this.domain = domain;
    this.url = websocketUrl;
    this.conn = null;
    this.jid = '';
    this.onDisconnect = () => {};
  }

  /** Sign in; resolves when bound, rejects with a message for people. */
  connect(login, password) {
    const conn = new Strophe.Connection(this.url);
    this.conn = conn;
    const jid = `${login}@${this.domain}/${stableResource()}`;
    return new Promise((resolve, reject) => {
      let done = false;
      conn.connect(jid, password, (status, condition) => {
        const S = Strophe.Status;
        if (status === S.CONNECTED) {
          done = true;
          this.jid = conn.jid;
          resolve();
        } else if (status === S.AUTHFAIL) {
          done = true;
          reject(new Error('The user name or password is not correct, or the account is locked.'));
        } else if (status === S.CONNFAIL || status === S.ERROR) {
          if (!done) {
            done = true;
            reject(new Error(`Cannot reach the server (${condition || 'connection failed'}).`));
          }
        } else if (status === S.DISCONNECTED) {
          if (!done) {
            done = true;
            reject(new Error('The server closed the connection.'));
          } else {
            this.onDisconnect(condition);
          }
        }
      });
    });
  }

  disconnect(reason) {
    if (this.conn) this.conn.disconnect(reason || 'signed out');
  }

  send(stanza) {
    this.conn.send(stanza);
  }

  /** Send an IQ (a builder or element); resolves with the result, rejects with an Error. */
  iq(stanza, timeout = IQ_TIMEOUT_MS) {
    return new Promise((resolve, reject) => {
      this.conn.sendIQ(
        stanza,
        (result) => resolve(result),
        (err) => reject(Object.assign(new Error(errorText(err)), { stanza: err })),
        timeout,
      );
    });
  }

  /** The adapter for Web Push: `sendIq(xmlString) → Promise<Element>` (the result stanza). */
  sendIqString = (xml) => {
    const doc = new DOMParser().parseFromString(xml, 'text/xml');
    const el = doc.documentElement;
    if (!el || el.localName !== 'iq' || doc.getElementsByTagName('parsererror').length) {
      return Promise.reject(new Error('not an IQ stanza'));
    }
    if (!el.getAttribute('xmlns')) el.setAttribute('xmlns', 'jabber:client');
    return this.iq(el);
  };

  /** Call `fn(stanza)` for every stanza of `name` (`message`, `presence`, `iq`); keeps it. */
  on(name, fn, ns = null, type = null) {
    this.conn.addHandler((stanza) => {
      try {
        fn(stanza);
      } catch (err) {
        console.error('handler failed', err);
      }
      return true;
    }, ns, name, type);
  }
}
