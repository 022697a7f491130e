// The alert inbox: urn:carewire:alert:0 alerts with priority, patient and location, a respond-by
// countdown, the responses the rule offers (written back with the <response/> IQ), the others'
// <responded/> headlines, and the high-priority sound for the organisation's configured length.

import { $iq, NS, child, children, text } from './xmpp.js';

const HIGH = new Set(['urgent', 'critical']);
const ACTION_LABELS = { accept: 'Accept', decline: 'Decline', 'accept-and-call': 'Accept and Call' };
const PAST = { accept: 'accepted', decline: 'declined', 'accept-and-call': 'accepted (and call)' };

/** The alert carried by a message stanza, as plain data (null when it carries none). */
export function parseAlert(stanza) {
  const el = child(stanza, 'alert', NS.alert);
  if (!el) return null;
  const patientEl = child(el, 'patient', NS.alert);
  const details = children(patientEl, 'detail', NS.alert)
    .filter((d) => !['true', '1'].includes(d.getAttribute('hidden')))
    .map((d) => ({ label: d.getAttribute('label'), value: d.textContent }));
  const responses = [...(child(el, 'responses', NS.alert)?.children || [])]
    .filter((r) => r.localName in ACTION_LABELS)
    .map((r) => ({ action: r.localName, number: r.getAttribute('number') || '' }));
  return {
    id: el.getAttribute('id'),
    priority: el.getAttribute('priority') || 'normal',
    expires: Date.parse(el.getAttribute('expires')),
    room: el.getAttribute('room') || '',
    subject: text(el, 'subject', NS.alert),
    message: text(el, 'message', NS.alert),
    additional: text(el, 'additional-content', NS.alert),
    mrn: patientEl ? patientEl.getAttribute('mrn') : '',
    details,
    responses,
    audible: HIGH.has(el.getAttribute('priority')),
  };
}

function formatLeft(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

/** A tone repeated for a bounded time (Web Audio: no sound file to ship). */
class Siren {
  constructor() {
    this.ctx = null;
    this.timer = null;
    this.until = 0;
    this.onChange = () => {};
  }

  get isPlaying() {
    return this.timer !== null;
  }

  play(seconds) {
    this.until = Math.max(this.until, Date.now() + seconds * 1000);
    if (this.timer) return;
    try {
      this.ctx = this.ctx || new AudioContext();
    } catch {
      this.ctx = null;
    }
    const beep = () => {
      if (Date.now() >= this.until) return this.stop();
      if (!this.ctx) return undefined;
      const osc = this.ctx.createOscillator();
      const gain = this.ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.value = 0.2;
      osc.connect(gain).connect(this.ctx.destination);
      osc.start();
      osc.stop(this.ctx.currentTime + 0.4);
      return undefined;
    };
    this.timer = setInterval(beep, 800);
    beep();
    this.onChange(true);
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.until = 0;
    this.onChange(false);
  }
}

export class AlertInbox {
  /**
   * @param {object} deps xmpp (Xmpp), list (the <ol>), empty (the "No alerts" text), count (the badge),
   *   silence (the button), announce(text), openRoom(jid, title), showPatient(mrn), soundSeconds()
   */
  constructor(deps) {
    Object.assign(this, deps);
    this.alerts = new Map();
    this.siren = new Siren();
    this.siren.onChange = (on) => {
      this.silence.hidden = !on;
      document.body.dataset.alertSound = on ? 'playing' : 'off';
    };
    this.silence.addEventListener('click', () => this.siren.stop());
    this.ticker = setInterval(() => this.tick(), 1000);
  }

  /** An alert message arrived: show it (once), sound it when high priority. */
  add(stanza, alert) {
    if (!alert.id || this.alerts.has(alert.id)) return;
    const li = this.render(alert);
    const entry = { alert, li, state: 'open' };
    this.alerts.set(alert.id, entry);
    this.list.prepend(li);
    window.carewireStats?.alertShown?.(alert.id);  // on screen from here
    this.tick();
    this.updateCount();
    const delayed = child(stanza, 'delay', NS.delay);
    if (alert.audible && !delayed && alert.expires > Date.now()) this.siren.play(this.soundSeconds());
    this.announce(`New ${alert.priority} alert: ${alert.subject}`);
  }

  render(alert) {
    const li = document.createElement('li');
    li.className = 'alert';
    li.dataset.alertId = alert.id;
    li.dataset.priority = alert.priority;
    li.dataset.state = 'open';
    const titleId = `alert-${alert.id}-title`;
    li.setAttribute('aria-labelledby', titleId);
    const h = document.createElement('h3');
    h.id = titleId;
    h.innerHTML = '<span class="priority"></span>: <span class="subject"></span>';
    h.querySelector('.priority').textContent = alert.priority;
    h.querySelector('.subject').textContent = alert.subject || '(no subject)';
    li.append(h);
    const add = (cls, value) => {
      if (!value) return;
      const p = document.createElement('p');
      p.className = cls;
      p.textContent = value;
      li.append(p);
    };
    add('message', alert.message);
    if (alert.mrn) {
      const patient = alert.details.map((d) => `${d.label}: ${d.value}`).join('; ');
      add('patient', `Patient: MRN ${alert.mrn}${patient ? `; ${patient}` : ''}`);
    }
    add('additional', alert.additional);
    const countdown = document.createElement('p');
    countdown.innerHTML = 'Respond by: <span class="countdown" role="timer" aria-live="off"></span>';
    li.append(countdown);
    const outcome = document.createElement('p');
    outcome.className = 'outcome';
    outcome.setAttribute('role', 'status');
    li.append(outcome);
    const actions = document.createElement('div');
    actions.className = 'actions';
    for (const r of alert.responses) {
      const b = document.createElement('button');
      b.type = 'button';
      b.dataset.action = r.action;
      b.textContent = ACTION_LABELS[r.action] + (r.number ? ` (${r.number})` : '');
      b.setAttribute('aria-describedby', titleId);
      b.addEventListener('click', () => this.respond(alert.id, r));
      actions.append(b);
    }
    if (alert.mrn) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'secondary';
      b.textContent = 'Patient details';
      b.setAttribute('aria-describedby', titleId);
      b.addEventListener('click', () => this.showPatient(alert.mrn));
      actions.append(b);
    }
    if (alert.room) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'secondary';
      b.textContent = 'Open the alert\u2019s room';
      b.setAttribute('aria-describedby', titleId);
      b.addEventListener('click', () => this.openRoom(alert.room, alert.subject));
      actions.append(b);
    }
    li.append(actions);
    return li;
  }

  async respond(id, response) {
    const entry = this.alerts.get(id);
    if (!entry || entry.state !== 'open') return;
    const buttons = entry.li.querySelectorAll('button[data-action]');
    buttons.forEach((b) => { b.disabled = true; });
    const outcome = entry.li.querySelector('.outcome');
    outcome.textContent = 'Sending\u2026';
    try {
      await this.xmpp.iq(
        $iq({ type: 'set', to: this.xmpp.domain }).c('response', { xmlns: NS.alert, alert: id, action: response.action }),
      );
      this.close(entry, `You ${PAST[response.action]}.`, 'answered');
      if (response.action === 'accept-and-call' && response.number) {
        // The call is the client's job: a tel: link the workstation's phone software opens.
        const call = document.createElement('a');
        call.href = `tel:${response.number}`;
        call.textContent = `Call ${response.number}`;
        outcome.append(' ', call);
        call.focus();
      }
    } catch (err) {
      outcome.textContent = `Not recorded: ${err.message}`;
      if (entry.alert.expires > Date.now()) buttons.forEach((b) => { b.disabled = false; });
    }
  }

  /** Another recipient (or our other device) answered. */
  responded(el) {
    const entry = this.alerts.get(el.getAttribute('alert'));
    if (!entry) return;
    const by = (el.getAttribute('by') || '').split('@')[0];
    const action = el.getAttribute('action') || '';
    const line = `${by} ${PAST[action] || action}.`;
    if (entry.state === 'open') this.close(entry, line, 'answered');
    else entry.li.querySelector('.outcome').textContent += ` ${line}`;
  }

  close(entry, message, state) {
    entry.state = state;
    entry.li.dataset.state = state;
    entry.li.querySelector('.outcome').textContent = message;
    entry.li.querySelectorAll('button[data-action]').forEach((b) => { b.disabled = true; });
    if (![...this.alerts.values()].some((e) => e.state === 'open' && e.alert.audible)) this.siren.stop();
    this.updateCount();
  }

  tick() {
    const now = Date.now();
    for (const entry of this.alerts.values()) {
      const left = entry.alert.expires - now;
      const el = entry.li.querySelector('.countdown');
      if (entry.state !== 'open') continue;
      if (Number.isNaN(left) || left <= 0) {
        el.textContent = 'expired';
        this.close(entry, 'Expired without your response.', 'expired');
      } else {
        el.textContent = formatLeft(left);
        el.setAttribute('aria-label', `${Math.ceil(left / 60000)} minutes left`);
      }
    }
  }

  updateCount() {
    const open = [...this.alerts.values()].filter((e) => e.state === 'open').length;
    this.count.textContent = String(open);
    this.empty.hidden = this.alerts.size > 0;
  }

  stop() {
    clearInterval(this.ticker);
    this.siren.stop();
  }
}
