/** The cashier's stylesheet: inline, no fonts or images to fetch; phone first, a centred card on desktop. */
export const CASHIER_CSS = `
:root{--fg:#111827;--muted:#6b7280;--soft:#9ca3af;--line:#e5e7eb;--bg:#f2f4f7;--card:#fff;--brand:#2563eb;
--ok:#16a34a;--wx:#07c160;--ali:#1677ff;--warn-bg:#fff7ed;--warn:#c2410c}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;min-height:100vh;background:var(--bg);color:var(--fg);
font:15px/1.5 -apple-system,BlinkMacSystemFont,"Segoe UI","PingFang SC","Hiragino Sans GB","Microsoft YaHei",
"Noto Sans CJK SC","Noto Sans SC",system-ui,sans-serif;display:flex;flex-direction:column;align-items:center;
padding:14px 12px calc(24px + env(safe-area-inset-bottom))}
.top{width:100%;max-width:420px;display:flex;align-items:center;justify-content:space-between;gap:8px;
color:var(--muted);font-size:13px;margin:2px 2px 12px}
.secure{display:inline-flex;gap:6px;align-items:center;white-space:nowrap;flex:none}
.secure svg{width:14px;height:14px}
.badge-sandbox{background:#fef3c7;color:#92400e;border-radius:999px;padding:2px 10px;font-size:12px;font-weight:600;
white-space:nowrap;overflow:hidden;text-overflow:ellipsis;min-width:0}
.card{width:100%;max-width:420px;background:var(--card);border-radius:20px;overflow:hidden;
box-shadow:0 1px 2px rgba(16,24,40,.05),0 12px 32px rgba(16,24,40,.08)}
.summary{padding:26px 24px 22px;text-align:center;border-bottom:1px dashed var(--line)}
.merchant{display:inline-flex;align-items:center;gap:8px;font-weight:600;font-size:15px;max-width:100%}
.merchant span:last-child{overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.avatar{flex:none;width:28px;height:28px;border-radius:8px;background:#eef2ff;color:#4338ca;display:inline-grid;
place-items:center;font-size:14px;font-weight:700}
.subject{margin:6px 0 0;color:var(--muted);font-size:14px;overflow-wrap:anywhere}
.amount{margin:12px 0 2px;font-size:42px;line-height:1.15;font-weight:700;letter-spacing:-.02em;
font-variant-numeric:tabular-nums}
.amount .cur{font-size:26px;margin-right:3px;font-weight:600}
.countdown{display:inline-flex;gap:6px;align-items:center;margin:10px 0 0;padding:4px 12px;border-radius:999px;
background:var(--warn-bg);color:var(--warn);font-size:13px}
.countdown b{font-variant-numeric:tabular-nums;font-weight:600}
.view{padding:20px 20px 22px}
.view h2{font-size:14px;color:var(--muted);font-weight:500;margin:0 0 12px}
.choices{list-style:none;margin:0;padding:0;display:grid;gap:10px}
.choice{width:100%;display:flex;align-items:center;gap:14px;padding:13px 14px;border:1px solid var(--line);
border-radius:14px;background:#fff;font:inherit;color:inherit;text-align:left;cursor:pointer;
transition:border-color .15s,background-color .15s,box-shadow .15s}
.choice:hover{border-color:#c7d2fe;background:#fafbff;box-shadow:0 2px 8px rgba(37,99,235,.08)}
.choice:focus-visible,.btn:focus-visible{outline:2px solid var(--brand);outline-offset:2px}
.choice[disabled]{opacity:.55;cursor:progress}
.icon{flex:none;width:38px;height:38px;display:block}
.choice .label{flex:1;min-width:0;display:flex;flex-direction:column}
.choice .label b{font-size:16px;font-weight:600}
.choice .label small{color:var(--muted);font-size:13px}
.chev{flex:none;width:18px;height:18px;color:var(--soft)}
.empty{margin:4px 0 0;padding:16px;border-radius:12px;background:#f9fafb;color:var(--muted);text-align:center}
.pay-title{display:flex;align-items:center;justify-content:center;gap:10px;font-weight:600;font-size:16px;
margin:0 0 14px}
.pay-title .icon{width:28px;height:28px}
.pay-title>span{display:inline-flex}
.qr{width:216px;height:216px;margin:0 auto;padding:12px;border:1px solid var(--line);border-radius:16px;
background:#fff}
.qr svg{display:block;width:100%;height:100%}
.hint{text-align:center;margin:14px 0 2px;font-weight:500}
.waiting{display:flex;justify-content:center;align-items:center;gap:8px;color:var(--muted);font-size:13px;
margin:4px 0 18px}
.spinner{width:14px;height:14px;border:2px solid #d1d5db;border-top-color:var(--brand);border-radius:50%;
animation:spin .9s linear infinite}
@keyframes spin{to{transform:rotate(360deg)}}
@media (prefers-reduced-motion:reduce){.spinner{animation:none}}
.actions{display:grid;gap:10px}
.btn{display:block;width:100%;padding:12px 16px;border-radius:12px;font:inherit;font-weight:600;text-align:center;
text-decoration:none;cursor:pointer;border:1px solid transparent;line-height:1.4}
.btn-primary{background:var(--brand);color:#fff}
.btn-primary:hover{background:#1d4ed8}
.btn-secondary{background:#fff;color:var(--fg);border-color:var(--line)}
.btn-secondary:hover{background:#f9fafb}
.btn-wallet{background:#fffbeb;color:#92400e;border-color:#fde68a}
.btn-link{background:none;border:0;color:var(--brand);font-weight:500;padding:6px}
.message{min-height:1.5em;margin:10px 0 0;text-align:center;font-size:13px;color:var(--muted)}
.message.error{color:#b91c1c}
.message:empty{min-height:0;margin:0}
.result{text-align:center;padding:30px 24px 26px}
.result-icon{width:68px;height:68px;margin:0 auto 12px;display:block}
.result h2{font-size:22px;color:var(--fg);font-weight:700;margin:0 0 6px}
.result p{margin:0 0 18px;color:var(--muted)}
.result .paid-amount{font-size:18px;color:var(--fg);font-weight:600;margin:0 0 6px;font-variant-numeric:tabular-nums}
footer{margin-top:14px;color:var(--soft);font-size:12px;text-align:center;overflow-wrap:anywhere}
body[data-view=paid] .countdown,body[data-view=closed] .countdown{display:none}
body[data-view=closed] .amount{color:var(--soft)}
#view-choose .actions{margin-top:10px}
[hidden]{display:none!important}
@media (min-width:720px){body{padding-top:9vh}.amount{font-size:46px}.view{padding:22px 28px 26px}
.summary{padding:30px 28px 24px}}
`;
