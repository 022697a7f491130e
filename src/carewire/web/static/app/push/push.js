// Web Push for the web client (docs/push.md#web-push): subscribe this browser to the server's
// pushes, so a clinician hears of a new alert or message while the Carewire tab is closed.
//
//   import('/app/push/push.js').then((m) => m.enableWebPush(sendIq));
//
// sendIq(xmlString) → Promise<Element> sends an IQ over the XMPP WebSocket and resolves with
// the result <iq/> (it rejects on type='error'). The IQs given to it have no 'id' and no 'to'
// (they go to the signed-in account): sendIq adds the id.
//
// Nothing here sees a message: the push says only "alert" or "message" and a count; the
// service worker (sw.js) shows "New alert" / "New message" and opens /app/ when clicked.

const NS = 'urn:carewire:webpush:0';
const WORKER = '/app/push/sw.js';
const SCOPE = '/app/';

/** Whether this browser can receive Web Push (a secure context with service workers). */
export function isWebPushSupported() {
  return (
    typeof window !== 'undefined' &&
    window.isSecureContext &&
    'serviceWorker' in navigator &&
    'PushManager' in window &&
    'Notification' in window
  );
}

function escapeAttr(value) {
  return String(value)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&apos;')
    .replace(/"/g, '&quot;');
}

/** Base64url (with or without padding) → bytes, for the applicationServerKey. */
export function base64UrlToBytes(text) {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/');
  const padded = b64 + '='.repeat((4 - (b64.length % 4)) % 4);
  const raw = atob(padded);
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i += 1) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

function sameKey(buffer, bytes) {
  if (!buffer) return false;
  const have = new Uint8Array(buffer);
  return have.length === bytes.length && have.every((b, i) => b === bytes[i]);
}

/** The server's VAPID public key (base64url), asked of the account. */
export async function vapidKey(sendIq) {
  const result = await sendIq(`<iq type='get'><vapid xmlns='${NS}'/></iq>`);
  const vapid = result.getElementsByTagNameNS(NS, 'vapid')[0];
  const key = vapid && vapid.getAttribute('key');
  if (!key) throw new Error('the server sent no Web Push key');
  return key;
}

/**
 * Ask for permission, register the service worker, subscribe with the browser's push
 * service and hand the subscription to the server. Call it at each sign-in while the
 * toggle is on: it sends the browser's current subscription again (harmless when the
 * server has it; needed when the browser renewed it or another clinician used this browser).
 *
 * @param {(xml: string) => Promise<Element>} sendIq
 * @returns {Promise<{endpoint: string}>}
 * @throws {Error} unsupported browser, permission refused, or the server's error.
 */
export async function enableWebPush(sendIq) {
  if (!isWebPushSupported()) throw new Error('this browser cannot receive push notifications');
  const permission = await Notification.requestPermission();
  if (permission !== 'granted') throw new Error('notifications are not allowed for this site');
  await navigator.serviceWorker.register(WORKER, { scope: SCOPE });
  const registration = await navigator.serviceWorker.ready;
  const key = base64UrlToBytes(await vapidKey(sendIq));
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription.options.applicationServerKey, key)) {
    await subscription.unsubscribe(); // made for another server key: useless now
    subscription = null;
  }
  if (!subscription) {
    subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: key,
    });
  }
  const json = subscription.toJSON();
  const keys = json.keys || {};
  await sendIq(
    `<iq type='set'><subscribe xmlns='${NS}' endpoint='${escapeAttr(json.endpoint)}'` +
      ` p256dh='${escapeAttr(keys.p256dh || '')}' auth='${escapeAttr(keys.auth || '')}'/></iq>`,
  );
  return { endpoint: json.endpoint };
}

/**
 * Stop pushes to this browser: tell the server, then unsubscribe from the push service.
 * Resolves to false when the browser had no subscription.
 *
 * @param {(xml: string) => Promise<Element>} sendIq
 * @returns {Promise<boolean>}
 */
export async function disableWebPush(sendIq) {
  if (!('serviceWorker' in navigator)) return false;
  const registration = await navigator.serviceWorker.getRegistration(SCOPE);
  const subscription = registration && (await registration.pushManager.getSubscription());
  if (!subscription) return false;
  try {
    await sendIq(
      `<iq type='set'><unsubscribe xmlns='${NS}'` +
        ` endpoint='${escapeAttr(subscription.endpoint)}'/></iq>`,
    );
  } catch (error) {
    // item-not-found: the server had already forgotten it (gone, or another account's now).
  }
  await subscription.unsubscribe();
  return true;
}
