// Carewire console: the inactivity sign-out.
// The server ends a session idle longer than the timeout (the policy: 20 minutes);
// this timer takes an idle page to the sign-out page just after that, so an
// unattended screen does not keep showing the console.
(function () {
  "use strict";
  var seconds = Number(document.body.getAttribute("data-session-timeout"));
  if (!seconds || seconds <= 0) {
    return;
  }
  window.setTimeout(function () {
    window.location.assign("/signout?reason=inactivity");
  }, (seconds + 1) * 1000);
})();
