/**
 * The cashier's browser code: plain ES2017, no library, inline (CSP nonce). It reads its facts from
 * the `cashier-data` JSON block, submits the choice, shows the result by display mode, and follows
 * the order live: EventSource first; polling every 3 s while no stream is open (blocked, failed,
 * or no EventSource at all), until the order expires. Paid → the success view, a 3-second countdown,
 * then the signed return URL. Expired or closed → the closed view.
 */
// biome-ignore lint/complexity/noUselessStringRaw: raw, so a backslash added to the browser code stays a backslash
export const CASHIER_SCRIPT = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('cashier-data').textContent);
  var t = data.text;
  var api = '/api/v1/public/orders/' + encodeURIComponent(data.orderId);
  var auth = '?token=' + encodeURIComponent(data.token);
  var clockOffset = data.serverNow - Date.now();
  var expireAt = Date.parse(data.order.expireAt);
  var es = null;
  var sawEvent = false;
  var pollTimer = null;
  var tickTimer = null;
  var final = false;
  var expired = false;

  function $(id) { return document.getElementById(id); }
  function now() { return Date.now() + clockOffset; }
  function pad(n) { return n < 10 ? '0' + n : String(n); }

  function show(name) {
    ['choose', 'pay', 'paid', 'closed'].forEach(function (view) {
      var el = $('view-' + view);
      if (el) el.hidden = view !== name;
    });
    document.body.setAttribute('data-view', name);
  }

  function say(id, text, isError) {
    var el = $(id);
    if (!el) return;
    el.textContent = text || '';
    el.className = 'message' + (isError ? ' error' : '');
  }

  function call(method, path, body) {
    var init = { method: method, cache: 'no-store', credentials: 'omit', headers: {} };
    if (body) {
      init.headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(api + path + auth, init).then(function (res) {
      return res.json().catch(function () { return {}; }).then(function (json) {
        return { status: res.status, body: json };
      });
    });
  }

  function apply(order) {
    if (!order || final) return;
    if (order.status === 'paid') paid(order);
    else if (order.status === 'closed' || order.status === 'refunded') closed(order);
  }

  function stopLive() {
    if (es) { es.close(); es = null; }
    if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
  }

  function paid(order) {
    final = true;
    stopLive();
    clearInterval(tickTimer);
    show('paid');
    var note = $('redirect-note');
    var link = $('return-link');
    var url = order.returnUrl;
    if (!url) {
      note.textContent = t.canClose;
      link.hidden = true;
      return;
    }
    link.href = url;
    link.hidden = false;
    var left = 3;
    note.textContent = t.returningIn.replace('{n}', String(left));
    var timer = setInterval(function () {
      left -= 1;
      if (left > 0) {
        note.textContent = t.returningIn.replace('{n}', String(left));
        return;
      }
      clearInterval(timer);
      note.textContent = t.redirecting;
      location.replace(url);
    }, 1000);
  }

  function closed(order) {
    final = true;
    stopLive();
    clearInterval(tickTimer);
    showClosed(order.status === 'refunded', order.returnUrl);
  }

  function showClosed(refunded, url) {
    show('closed');
    $('closed-title').textContent = refunded ? t.refundedTitle : t.closedTitle;
    $('closed-text').textContent = refunded ? t.refundedText : t.closedText;
    $('closed-paid').hidden = final;
    var link = $('closed-return');
    if (url) { link.href = url; link.hidden = false; } else { link.hidden = true; }
  }

  function tick() {
    var left = Math.max(0, expireAt - now());
    var s = Math.floor(left / 1000);
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    $('countdown-value').textContent = (h > 0 ? h + ':' + pad(m) : pad(m)) + ':' + pad(s % 60);
    if (left <= 0 && !expired && !final) {
      expired = true;
      clearInterval(tickTimer);
      if (pollTimer) { clearInterval(pollTimer); pollTimer = null; }
      showClosed(false, null);
    }
  }

  function poll() {
    call('GET', '').then(function (r) { if (r.status === 200) apply(r.body); }, function () {});
  }

  function startLive() {
    if (typeof window.EventSource === 'function') {
      try {
        es = new EventSource(api + '/events' + auth);
        es.addEventListener('status', function (event) {
          sawEvent = true;
          try { apply(JSON.parse(event.data)); } catch (e) { /* a malformed event: the poll covers */ }
        });
        es.onerror = function () { if (es && es.readyState === 2) es = null; };
      } catch (e) {
        es = null;
      }
    }
    // Polling covers whenever no stream is open and delivering: no EventSource, blocked, reconnecting.
    pollTimer = setInterval(function () {
      if (final || expired) return;
      if (es && es.readyState === 1 && sawEvent) return;
      poll();
    }, 3000);
  }

  function busy(on) {
    var buttons = document.querySelectorAll('[data-channel]');
    for (var i = 0; i < buttons.length; i++) buttons[i].disabled = on;
  }

  function choose(code) {
    say('choose-message', '');
    var body = { channelCode: code };
    if (code === 'wx_jsapi') {
      if (!data.openid) { say('choose-message', t.needOpenid, true); return; }
      body.openid = data.openid;
    }
    busy(true);
    call('POST', '/submit', body).then(function (r) {
      busy(false);
      if (r.status !== 201) {
        var error = r.body && r.body.error;
        if (error && (error.code === 'order_paid' || error.code === 'order_closed')) poll();
        say('choose-message', t.submitFailed + (error ? error.message : 'HTTP ' + r.status), true);
        return;
      }
      display(code, r.body);
    }, function () {
      busy(false);
      say('choose-message', t.networkError, true);
    });
  }

  function display(code, result) {
    var attempt = result.attempt;
    var provider = code.indexOf('wx_') === 0 ? 'wechatpay' : 'alipay';
    show('pay');
    say('pay-message', '');
    $('pay-name').textContent = t.channels[code].name;
    $('pay-icon-wechatpay').hidden = provider !== 'wechatpay';
    $('pay-icon-alipay').hidden = provider !== 'alipay';
    var qr = $('qr');
    qr.hidden = true;
    qr.innerHTML = '';
    var wallet = $('wallet-link');
    wallet.hidden = !result.walletUrl;
    if (result.walletUrl) wallet.href = result.walletUrl;
    var hint = $('pay-hint');
    if (attempt.displayMode === 'qr_code' && result.qrSvg) {
      qr.innerHTML = result.qrSvg;
      qr.hidden = false;
      hint.textContent = t.scan[provider];
    } else if (attempt.displayMode === 'url') {
      hint.textContent = t.redirecting;
      location.assign(attempt.displayContent);
    } else if (attempt.displayMode === 'form') {
      hint.textContent = t.redirecting;
      var box = $('form-box');
      box.innerHTML = attempt.displayContent;
      var form = box.querySelector('form');
      if (form) form.submit();
    } else if (attempt.displayMode === 'jsapi') {
      jsapi(JSON.parse(attempt.displayContent), hint);
    }
  }

  function jsapi(params, hint) {
    function invoke() {
      hint.textContent = t.waiting;
      window.WeixinJSBridge.invoke('getBrandWCPayRequest', params, function (res) {
        var outcome = (res && res.err_msg) || '';
        if (outcome === 'get_brand_wcpay_request:ok') { hint.textContent = t.checking; poll(); }
        else if (outcome === 'get_brand_wcpay_request:cancel') say('pay-message', t.cancelled);
        else say('pay-message', t.submitFailed + outcome, true);
      });
    }
    if (window.WeixinJSBridge && window.WeixinJSBridge.invoke) { invoke(); return; }
    hint.textContent = t.openInWechat;
    document.addEventListener('WeixinJSBridgeReady', invoke, false);
  }

  var lastSync = 0;
  function syncNow(messageId) {
    if (Date.now() - lastSync < 5000) { say(messageId, t.tooSoon); return; }
    lastSync = Date.now();
    say(messageId, t.checking);
    call('POST', '/sync').then(function (r) {
      if (r.status === 200) {
        apply(r.body.order);
        if (!final) say(messageId, t.notPaidYet);
      } else if (r.status === 429) {
        say(messageId, t.tooSoon);
      } else {
        say(messageId, t.networkError, true);
      }
    }, function () { say(messageId, t.networkError, true); });
  }

  var choices = document.querySelectorAll('[data-channel]');
  for (var i = 0; i < choices.length; i++) {
    choices[i].addEventListener('click', function (event) {
      choose(event.currentTarget.getAttribute('data-channel'));
    });
  }
  $('change-method').addEventListener('click', function () { show('choose'); });
  $('paid-button').addEventListener('click', function () { syncNow('pay-message'); });
  $('choose-paid').addEventListener('click', function () { syncNow('choose-message'); });
  $('closed-paid').addEventListener('click', function () { syncNow('closed-message'); });

  if (data.order.status !== 'waiting') {
    apply(data.order);
  } else {
    tick();
    if (!expired) {
      tickTimer = setInterval(tick, 1000);
      startLive();
    }
  }
})();
`;
