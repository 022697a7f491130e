// The web client's entry point: sign-in, the stanza dispatch, tabs, keyboard shortcuts, presence,
// the client settings (session timeout, acknowledgements, sound length) and Web Push opt-in.

import { AlertInbox, parseAlert } from './alerts.js';
import { Chats } from './chat.js';
import { Contacts, uploadFile } from './contacts.js';
import { Places } from './places.js';
import { $iq, $pres, NS, Xmpp, bare, child, text } from './xmpp.js';

const $ = (id) => document.getElementById(id);
const PUSH_PREF = 'carewire.push';
const SHOWS = { available: null, busy: 'dnd', away: 'xa' };

// Figures the benchmark and the tests read (nothing is sent anywhere).
window.carewireStats = {
  usableAt: 0,
  alerts: {},
  history: null,
  render: null,
  alertShown(id) { this.alerts[id] = performance.timeOrigin + performance.now(); },
  historyLoaded(count, ms) { this.history = { count, ms }; },
  rendered(count, ms) { this.render = { count, ms }; },
};

const state = { xmpp: null, chats: null, alerts: null, contacts: null, settings: {}, idleTimer: null };

function announce(message) {
  $('status').textContent = message;
}

async function config() {
  const r = await fetch('config.json', { cache: 'no-store' });
  if (!r.ok) throw new Error('The server did not give its configuration.');
  return r.json();
}

async function signIn(event) {
  event.preventDefault();
  const login = $('login').value.trim();
  const password = $('password').value;
  const error = $('signin-error');
  error.textContent = '';
  if (!login || !password) {
    error.textContent = 'Enter your user name and password.';
    (login ? $('password') : $('login')).focus();
    return;
  }
  $('signin-button').disabled = true;
  try {
    const cfg = await config();
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    const xmpp = new Xmpp(cfg.domain, `${scheme}://${location.host}${cfg.websocket_path}`);
    await xmpp.connect(login.includes('@') ? login.split('@')[0] : login, password);
    $('password').value = '';
    await start(xmpp);
  } catch (err) {
    error.textContent = err.message;
    $('password').focus();
  } finally {
    $('signin-button').disabled = false;
  }
}

async function start(xmpp) {
  state.xmpp = xmpp;
  const contacts = new Contacts({
    xmpp, listEl: $('contacts'), resultsEl: $('search-results'),
    openChat: (jid, name) => { showTab('chats'); state.chats.open(jid, name); },
  });
  const chats = new Chats({
    xmpp, listEl: $('conversations'), messagesEl: $('messages'), titleEl: $('conversation-title'),
    paneEl: $('conversation'), unreadEl: $('unread-count'), announce, nameOf: (jid) => contacts.nameOf(jid),
    onJoin: (jid, title) => places.joined(jid, title),
  });
  const places = new Places({
    xmpp, listEl: $('places'), emptyEl: $('places-empty'),
    open: (jid, name) => { showTab('chats'); chats.open(jid, name); },
    myGroups: () => new Set([...contacts.items.values()].map((c) => c.group).filter(Boolean)),
  });
  const alerts = new AlertInbox({
    xmpp, list: $('alerts'), empty: $('alerts-empty'), count: $('alert-count'), silence: $('silence'), announce,
    openRoom: (jid, title) => { showTab('chats'); chats.open(jid, title); },
    showPatient,
    soundSeconds: () => state.settings.soundSeconds || 30,
  });
  Object.assign(state, { chats, alerts, contacts, places });
  xmpp.on('message', onMessage);
  xmpp.on('presence', (p) => { contacts.onPresence(p); chats.presence(p); });
  xmpp.on('iq', (iq) => contacts.push(iq), NS.roster, 'set');
  xmpp.onDisconnect = () => signOut('The connection to the server was lost. Sign in again.');
  $('me').textContent = `Signed in as ${bare(xmpp.jid)}`;
  $('signin-view').hidden = true;
  $('app-view').hidden = false;
  await Promise.all([contacts.load().catch(() => {}).then(() => places.load()), loadSettings()]);
  xmpp.send($iq({ type: 'set', id: 'carbons' }).c('enable', { xmlns: NS.carbons }));
  sendPresence();  // offline messages and alerts are delivered after this
  startIdleTimer();
  if (localStorage.getItem(PUSH_PREF) === 'on') {
    $('push-toggle').checked = true;
    enablePush();
  }
  window.carewireStats.usableAt = performance.timeOrigin + performance.now();
  document.body.dataset.ready = 'true';
  $('tab-alerts').focus();
}

async function loadSettings() {
  try {
    const r = await state.xmpp.iq($iq({ type: 'get', to: state.xmpp.domain }).c('settings', { xmlns: NS.settings }));
    const s = child(r, 'settings', NS.settings);
    const desktop = [...s.children].find((c) => c.localName === 'session-timeout' && c.getAttribute('client') === 'desktop');
    const seconds = Number.parseInt(desktop?.textContent || '', 10);
    const org = child(s, 'organisation', NS.settings);
    state.settings = {
      idleSeconds: Number.isFinite(seconds) && seconds > 0 ? seconds : 0,
      ackEnabled: child(s, 'acknowledgements', NS.settings)?.getAttribute('enabled') !== 'false',
      soundSeconds: Number.parseInt(org?.getAttribute('high-priority-sound') || '30', 10),
    };
  } catch {
    state.settings = { idleSeconds: 0, ackEnabled: true, soundSeconds: 30 };
  }
  $('ackable').closest('label').hidden = !state.settings.ackEnabled;
}

function onMessage(m) {
  const carbon = child(m, 'received', NS.carbons) || child(m, 'sent', NS.carbons);
  if (carbon) {
    if (bare(m.getAttribute('from')) !== bare(state.xmpp.jid)) return;  // XEP-0280 §11
    const inner = child(child(carbon, 'forwarded', NS.forward), 'message');
    if (inner) handle(inner, carbon.localName === 'sent');
    return;
  }
  if (child(m, 'result', NS.mam)) return;  // the archive's results are read by their query
  handle(m, false);
}

function handle(m, isSentCarbon) {
  const from = m.getAttribute('from') || '';
  const alert = parseAlert(m);
  if (alert) {
    state.alerts.add(m, alert);
    return;
  }
  const responded = child(m, 'responded', NS.alert);
  if (responded) return state.alerts.responded(responded);
  const expired = child(m, 'expired', NS.conversation);
  if (expired) return state.chats.expired(expired.getAttribute('jid1'), expired.getAttribute('jid2'));
  const retract = child(m, 'retract', NS.retract);
  if (retract) {
    const peer = isSentCarbon ? bare(m.getAttribute('to')) : bare(from);
    return state.chats.remove(peer, retract.getAttribute('id'));
  }
  const receipt = child(m, 'received', NS.receipts);
  if (receipt && !isSentCarbon) state.chats.delivery(from, receipt.getAttribute('id'), 'received');
  for (const marker of ['received', 'displayed', 'acknowledged']) {
    const el = child(m, marker, NS.markers);
    if (el && !isSentCarbon) state.chats.delivery(m.getAttribute('type') === 'groupchat' ? from.split('/')[1] : from, el.getAttribute('id'), marker);
  }
  const invite = child(m, 'x', NS.conference);
  if (invite && !text(m, 'body')) {
    state.chats.conversation(invite.getAttribute('jid'), invite.getAttribute('reason') || undefined);
    return;
  }
  if (m.getAttribute('type') === 'error') return;
  state.chats.ingest(m, { isSentCarbon });
}

function sendPresence() {
  const show = SHOWS[$('presence').value];
  const p = $pres();
  if (show) p.c('show').t(show).up();
  state.xmpp.send(p);
}

// --- the organisation's session timeout: sign out after that long without input -------------

function startIdleTimer() {
  const seconds = state.settings.idleSeconds;
  if (!seconds) return;
  const reset = () => {
    clearTimeout(state.idleTimer);
    state.idleTimer = setTimeout(
      () => signOut(`Signed out after ${Math.round(seconds / 60)} minutes without activity.`), seconds * 1000);
  };
  for (const e of ['keydown', 'pointerdown', 'wheel', 'touchstart']) document.addEventListener(e, reset, { passive: true });
  reset();
}

function signOut(reason) {
  clearTimeout(state.idleTimer);
  state.alerts?.stop();
  state.chats?.stop();
  if (state.xmpp) {
    state.xmpp.onDisconnect = () => {};
    state.xmpp.disconnect();
  }
  // Nothing of the session stays on screen or in memory: the page is loaded again.
  sessionStorage.setItem('carewire.signedOut', reason || 'You signed out.');
  location.reload();
}

// --- Web Push (its module is served by the server when Web Push is installed) ---------------

function enablePush() {
  import('/app/push/push.js')
    .then((m) => m.enableWebPush(state.xmpp.sendIqString))
    .then(() => announce('Notifications are on for when this tab is closed.'))
    .catch(() => announce('Notifications for a closed tab are not available here.'));
}

// --- patient details (urn:carewire:patient:0), for the care team ------------------------------

async function showPatient(mrn) {
  const dl = $('patient-details');
  dl.replaceChildren();
  const dialog = $('patient-dialog');
  dialog.showModal();
  try {
    const r = await state.xmpp.iq($iq({ type: 'get', to: state.xmpp.domain }).c('patient', { xmlns: NS.patient, mrn }));
    const p = child(r, 'patient', NS.patient);
    const rows = [['MRN', mrn], ...[...(p?.getElementsByTagName('detail') || [])]
      .filter((d) => d.getAttribute('hidden') !== 'true')
      .map((d) => [d.getAttribute('label'), d.textContent])];
    const loc = p?.getElementsByTagName('location')[0];
    if (loc) rows.push(['Location', loc.textContent || [...loc.attributes].map((a) => a.value).join(' ')]);
    for (const [k, v] of rows) {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      dl.append(dt, dd);
    }
  } catch (err) {
    const dd = document.createElement('dd');
    dd.textContent = `Not available: ${err.message}`;
    dl.append(dd);
  }
  $('patient-close').focus();
}

// --- tabs and keyboard ------------------------------------------------------------------------

const TABS = ['alerts', 'chats', 'contacts'];

function showTab(name) {
  for (const t of TABS) {
    $(`tab-${t}`).setAttribute('aria-pressed', String(t === name));
    $(`${t}-panel`).hidden = t !== name;
  }
}

function onKey(e) {
  if (!e.altKey || e.ctrlKey || e.metaKey || $('app-view').hidden) return;
  const tab = { 1: 'alerts', 2: 'chats', 3: 'contacts' }[e.key];
  if (tab) {
    showTab(tab);
    $(`tab-${tab}`).focus();
  } else if (e.key === '4') {
    showTab('contacts');
    $('search').focus();
  } else if (e.key === '5' && !$('conversation').hidden) {
    $('message').focus();
  } else {
    return;
  }
  e.preventDefault();
}

async function onCompose(e) {
  e.preventDefault();
  const body = $('message').value.trim();
  const file = $('file').files[0];
  const ackable = $('ackable').checked;
  try {
    if (file) {
      announce(`Uploading ${file.name}\u2026`);
      const url = await uploadFile(state.xmpp, file);
      state.chats.send(body ? `${body}\n${url}` : url, { ackable, url });
      $('file').value = '';
      announce(`${file.name} shared.`);
    } else if (body) {
      state.chats.send(body, { ackable });
    }
    $('message').value = '';
    $('ackable').checked = false;
  } catch (err) {
    announce(`Not sent: ${err.message}`);
  }
  $('message').focus();
}

function init() {
  $('signin').addEventListener('submit', signIn);
  const reason = sessionStorage.getItem('carewire.signedOut');
  if (reason) {
    $('signin-error').textContent = reason;
    sessionStorage.removeItem('carewire.signedOut');
  }
  for (const t of TABS) $(`tab-${t}`).addEventListener('click', () => showTab(t));
  document.addEventListener('keydown', onKey);
  $('presence').addEventListener('change', sendPresence);
  $('signout').addEventListener('click', () => signOut('You signed out.'));
  $('push-toggle').addEventListener('change', (e) => {
    localStorage.setItem(PUSH_PREF, e.target.checked ? 'on' : 'off');
    if (e.target.checked) enablePush();
  });
  $('compose').addEventListener('submit', onCompose);
  $('message').addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey) onCompose(e);
  });
  $('open-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const jid = $('open-jid').value.trim();
    if (!jid.includes('@')) return announce('Enter an address such as name@domain.');
    state.chats.open(jid);
    // A room opened by its address is kept at hand: bookmarked (XEP-0402) for the next sign-in.
    if (jid.split('@')[1] === `chat.${state.xmpp.domain}`) {
      state.places.bookmark(jid).catch((err) => announce(`The room was not bookmarked: ${err.message}`));
    }
  });
  $('search-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const n = await state.contacts.search($('search').value);
    announce(`${n} found.`);
  });
  $('patient-close').addEventListener('click', () => $('patient-dialog').close());
  $('login').focus();
}

init();
