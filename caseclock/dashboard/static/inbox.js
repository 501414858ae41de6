// Keeps the escalation inbox current without a reload: every few seconds it asks the
// server for the list (the same HTML the page was built with) and, if it changed, puts
// it in place and tells screen reader users. Without JavaScript the page works the same,
// it just needs a reload. No framework; nothing runs if fetch is missing.
(function () {
  'use strict';
  var box = document.getElementById('inbox');
  var status = document.getElementById('inbox-status');
  if (!box || !status || !window.fetch || !window.DOMParser) {
    return;
  }
  var url = box.getAttribute('data-poll-url');
  var seconds = parseInt(box.getAttribute('data-poll-seconds'), 10) || 10;
  var pending = null;
  var timer = null;

  function current() {
    return box.querySelector('[data-version]');
  }

  function apply(fresh) {
    var old = current();
    if (!old || !fresh) {
      return;
    }
    // Do not move the page under someone using the list: wait until they leave it.
    if (box.contains(document.activeElement) && document.activeElement !== document.body) {
      pending = fresh;
      return;
    }
    pending = null;
    if (old.getAttribute('data-version') === fresh.getAttribute('data-version')) {
      return;
    }
    old.replaceWith(fresh);
    status.textContent = 'Inbox updated: ' + fresh.getAttribute('data-summary') + '.';
  }

  function poll() {
    fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/html' } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error('stopped: ' + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        apply(doc.body.querySelector('[data-version]'));
        timer = window.setTimeout(poll, seconds * 1000);
      })
      .catch(function () {
        // Signed out, or the server is away: stop; a reload starts again.
        status.textContent = '';
        timer = null;
      });
  }

  box.addEventListener('focusout', function () {
    window.setTimeout(function () {
      if (pending) {
        apply(pending);
      }
    }, 0);
  });
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'visible' && timer !== null) {
      window.clearTimeout(timer);
      poll();
    }
  });
  timer = window.setTimeout(poll, seconds * 1000);
})();
