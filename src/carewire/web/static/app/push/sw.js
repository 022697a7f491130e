// The web client's service worker for Web Push (docs/push.md#web-push), scope /app/.
//
// A push carries {"type": "alert"|"message", "count": n, "id": "…"}, decrypted by the
// browser: no sender, no text, no patient. It shows "New alert" or "New message"; a click
// focuses an open Carewire tab or opens /app/, where the client fetches the rest over TLS.

const APP = '/app/';

function readPush(event) {
  try {
    const data = event.data ? event.data.json() : {};
    return data && typeof data === 'object' ? data : {};
  } catch (error) {
    return {};
  }
}

self.addEventListener('install', () => {
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

self.addEventListener('push', (event) => {
  const data = readPush(event);
  const isAlert = data.type === 'alert';
  const count = Number.isInteger(data.count) && data.count > 1 ? data.count : 0;
  const title = isAlert ? 'New alert' : 'New message';
  const what = isAlert ? 'alerts' : 'messages';
  const body = count ? `${count} new ${what}: open Carewire` : 'Open Carewire to read it';
  event.waitUntil(
    self.registration.showNotification(title, {
      body,
      tag: isAlert ? 'carewire-alert' : 'carewire-message', // one per kind, replaced
      renotify: true,
      requireInteraction: isAlert, // an alert stays until the clinician acts on it
      data: { url: APP },
    }),
  );
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      for (const client of windows) {
        if (new URL(client.url).pathname.startsWith(APP) && 'focus' in client) {
          await client.focus();
          return;
        }
      }
      await self.clients.openWindow(APP);
    })(),
  );
});
