// The "Groups and rooms" list: what a clinician can open without knowing an address.
//
// - Directory groups: disco#items on groups.DOMAIN answers the groups the user may message
//   (their own groups, and their organisation's groups open to all its users). The user's own
//   groups (a roster group of the directory's contacts has the group's name) come first.
// - Rooms: the user's XEP-0402 bookmarks (PEP node urn:xmpp:bookmarks:1, item id = room JID),
//   and the rooms joined in this session. A room opened by address is bookmarked, so it is in
//   the list at the next sign-in too.

import { $iq, NS, bare, child, children } from './xmpp.js';

export const BOOKMARKS = 'urn:xmpp:bookmarks:1';
const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';
const PUBSUB = 'http://jabber.org/protocol/pubsub';
const MAX_ITEMS = 200;

export class Places {
  /** deps: xmpp, listEl, emptyEl, open(jid, name), myGroups() → Set of roster group names */
  constructor(deps) {
    Object.assign(this, deps);
    this.groups = new Map();  // jid → name
    this.rooms = new Map();   // jid → name
  }

  async load() {
    await Promise.all([this.loadGroups().catch(() => {}), this.loadBookmarks().catch(() => {})]);
    this.render();
  }

  async loadGroups() {
    const r = await this.xmpp.iq($iq({ type: 'get', to: `groups.${this.xmpp.domain}` }).c('query', { xmlns: DISCO_ITEMS }));
    for (const item of children(child(r, 'query', DISCO_ITEMS), 'item', DISCO_ITEMS).slice(0, MAX_ITEMS)) {
      const jid = item.getAttribute('jid');
      if (jid) this.groups.set(bare(jid), item.getAttribute('name') || jid.split('@')[0]);
    }
  }

  async loadBookmarks() {
    const r = await this.xmpp.iq($iq({ type: 'get' }).c('pubsub', { xmlns: PUBSUB }).c('items', { node: BOOKMARKS }));
    const items = child(child(r, 'pubsub', PUBSUB), 'items', PUBSUB);
    for (const item of children(items, 'item', PUBSUB).slice(0, MAX_ITEMS)) {
      const jid = item.getAttribute('id');
      if (!jid || !jid.includes('@')) continue;
      const name = child(item, 'conference', BOOKMARKS)?.getAttribute('name');
      this.rooms.set(bare(jid), name || jid.split('@')[0]);
    }
  }

  /** A room joined in this session (kept for the session). */
  joined(jid, name) {
    const given = name && name !== jid && name !== jid.split('@')[0] ? name : '';
    if (this.rooms.has(jid) && !given) return;
    this.rooms.set(jid, given || jid.split('@')[0]);
    this.render();
  }

  /** Bookmark a room (XEP-0402 §3.3: one item per room, only the owner reads the node). */
  bookmark(jid) {
    const name = this.rooms.get(jid) || jid.split('@')[0];
    const iq = $iq({ type: 'set' }).c('pubsub', { xmlns: PUBSUB })
      .c('publish', { node: BOOKMARKS }).c('item', { id: jid })
      .c('conference', { xmlns: BOOKMARKS, name }).up().up().up()
      .c('publish-options').c('x', { xmlns: NS.data, type: 'submit' });
    for (const [v, value] of [
      ['FORM_TYPE', 'http://jabber.org/protocol/pubsub#publish-options'],
      ['pubsub#persist_items', 'true'], ['pubsub#max_items', 'max'],
      ['pubsub#send_last_published_item', 'never'], ['pubsub#access_model', 'whitelist'],
    ]) iq.c('field', { var: v }).c('value').t(value).up().up();
    return this.xmpp.iq(iq);
  }

  render() {
    const mine = this.myGroups();
    const groups = [...this.groups].map(([jid, name]) => ({ jid, name, kind: 'group', mine: mine.has(name) }))
      .sort((a, b) => Number(b.mine) - Number(a.mine) || a.name.localeCompare(b.name));
    const rooms = [...this.rooms].map(([jid, name]) => ({ jid, name, kind: 'room' }))
      .sort((a, b) => a.name.localeCompare(b.name));
    this.listEl.replaceChildren(...[...groups, ...rooms].map((p) => {
      const li = document.createElement('li');
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.jid = p.jid;
      b.dataset.kind = p.kind;
      b.textContent = `${p.name} (${p.kind === 'room' ? 'room' : p.mine ? 'my group' : 'group'})`;
      b.title = p.jid;
      b.addEventListener('click', () => this.open(p.jid, p.name));
      li.append(b);
      return li;
    }));
    this.emptyEl.hidden = groups.length + rooms.length > 0;
  }
}
