// Form controls that show Russian formats whatever the browser's language (Chromium's
// <input type="date|time"> follows the browser locale and ignores lang="ru": 11/24/2026,
// 02:30 PM in an English browser). Each renders a plain text input carrying `name`, so the
// surrounding form submits what is shown: "24.11.2026", "14:30", or the chosen option's value.
//   RuDateInput  — ДД.ММ.ГГГГ with a digit mask and a calendar (Monday first, Russian months)
//   RuTimeInput  — ЧЧ:ММ (24 h) with a mask and a list of half-hour slots
//   SearchSelect — a searchable list of options ({value, label}): programs, users…
import React, { useEffect, useMemo, useRef, useState } from "react";
import { Popover, TextField, IconButton } from "@radix-ui/themes";

const MONTHS = ["Январь", "Февраль", "Март", "Апрель", "Май", "Июнь", "Июль", "Август", "Сентябрь",
  "Октябрь", "Ноябрь", "Декабрь"];
const WEEKDAYS = ["Пн", "Вт", "Ср", "Чт", "Пт", "Сб", "Вс"];
const pad = (n) => String(n).padStart(2, "0");

// "2026-11-24" or "24.11.2026" → {y, m, d} (m 1-based), or null
function parseDate(text) {
  const s = String(text || "").trim();
  let m = s.match(/^(\d{4})-(\d{2})-(\d{2})/);
  let y, mo, d;
  if (m) { y = +m[1]; mo = +m[2]; d = +m[3]; } else {
    m = s.match(/^(\d{1,2})\.(\d{1,2})\.(\d{4})$/);
    if (!m) return null;
    d = +m[1]; mo = +m[2]; y = +m[3];
  }
  const dt = new Date(y, mo - 1, d);
  if (dt.getFullYear() !== y || dt.getMonth() !== mo - 1 || dt.getDate() !== d) return null;
  return { y, m: mo, d };
}

const ruDate = (p) => `${pad(p.d)}.${pad(p.m)}.${p.y}`;

function toRu(value) {
  const p = parseDate(value);
  return p ? ruDate(p) : String(value || "");
}

function maskDate(text) {
  const digits = String(text).replace(/\D/g, "").slice(0, 8);
  let out = digits.slice(0, 2);
  if (digits.length > 2) out += "." + digits.slice(2, 4);
  if (digits.length > 4) out += "." + digits.slice(4, 8);
  return out;
}

function maskTime(text) {
  const s = String(text);
  if (/^\d{1,2}:\d{0,2}$/.test(s)) return s;
  const digits = s.replace(/\D/g, "").slice(0, 4);
  return digits.length > 2 ? digits.slice(0, 2) + ":" + digits.slice(2) : digits;
}

function Calendar({ value, onPick }) {
  const today = new Date();
  const picked = parseDate(value);
  const [view, setView] = useState(() => picked ? { y: picked.y, m: picked.m } :
    { y: today.getFullYear(), m: today.getMonth() + 1 });
  const first = new Date(view.y, view.m - 1, 1);
  const offset = (first.getDay() + 6) % 7; // Monday first
  const cells = [];
  for (let i = 0; i < 42; i++) cells.push(new Date(view.y, view.m - 1, 1 - offset + i));
  const shift = (n) => {
    const d = new Date(view.y, view.m - 1 + n, 1);
    setView({ y: d.getFullYear(), m: d.getMonth() + 1 });
  };
  const same = (a, p) => p && a.getFullYear() === p.y && a.getMonth() + 1 === p.m && a.getDate() === p.d;
  const isToday = (a) => a.toDateString() === today.toDateString();
  const btn = { border: "none", background: "transparent", cursor: "pointer", borderRadius: 6 };
  return (
    <div data-testid="ru-calendar" style={{ width: 252, userSelect: "none" }}>
      <div style={{ display: "flex", alignItems: "center", justifyContent: "space-between", marginBottom: 6 }}>
        <button type="button" aria-label="Предыдущий месяц" style={{ ...btn, padding: "2px 8px", fontSize: 16 }}
                onClick={() => shift(-1)}>‹</button>
        <span style={{ fontWeight: 600, fontSize: 14 }} data-testid="ru-calendar-month">
          {MONTHS[view.m - 1]} {view.y}
        </span>
        <button type="button" aria-label="Следующий месяц" style={{ ...btn, padding: "2px 8px", fontSize: 16 }}
                onClick={() => shift(1)}>›</button>
      </div>
      <div style={{ display: "grid", gridTemplateColumns: "repeat(7, 1fr)", gap: 2, textAlign: "center" }}>
        {WEEKDAYS.map((w, i) => (
          <span key={w} style={{ fontSize: 11, color: i > 4 ? "#e5484d" : "#6b7785", padding: "2px 0" }}>{w}</span>
        ))}
        {cells.map((c) => {
          const inMonth = c.getMonth() === view.m - 1;
          const sel = same(c, picked);
          return (
            <button key={c.toISOString()} type="button" data-testid="ru-calendar-day"
                    data-date={`${c.getFullYear()}-${pad(c.getMonth() + 1)}-${pad(c.getDate())}`}
                    onClick={() => onPick(ruDate({ y: c.getFullYear(), m: c.getMonth() + 1, d: c.getDate() }))}
                    style={{ ...btn, height: 30, fontSize: 13,
                      color: sel ? "white" : inMonth ? "#1f2933" : "#b5bfcb",
                      background: sel ? "var(--accent-9, #2f7fd8)" : "transparent",
                      boxShadow: isToday(c) && !sel ? "inset 0 0 0 1px var(--accent-8, #2f7fd8)" : "none",
                      fontWeight: sel || isToday(c) ? 600 : 400 }}>
              {c.getDate()}
            </button>
          );
        })}
      </div>
    </div>
  );
}

function CalendarIcon() {
  return (
    <svg width="15" height="15" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2"
         strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
      <rect x="3" y="4" width="18" height="18" rx="2" /><path d="M16 2v4M8 2v4M3 10h18" />
    </svg>
  );
}

function ClockIcon() {
  return (
    <svg width="15" height="15" viewBox="0 0 24 24" fill="none" stroke="currentColor" strokeWidth="2"
         strokeLinecap="round" strokeLinejoin="round" aria-hidden="true">
      <circle cx="12" cy="12" r="10" /><path d="M12 6v6l4 2" />
    </svg>
  );
}

const isoDate = (p) => `${p.y}-${pad(p.m)}-${pad(p.d)}`;

// onValue (optional): called with the ISO date once a whole date is typed or picked, "" when cleared
export function RuDateInput({ name, defaultValue, placeholder, inputTestid, size, width, onValue, ...props }) {
  const [text, setTextRaw] = useState(toRu(defaultValue));
  const [open, setOpen] = useState(false);
  useEffect(() => { setTextRaw(toRu(defaultValue)); }, [defaultValue, name]);
  const setText = (v) => {
    setTextRaw(v);
    if (!onValue) return;
    const p = parseDate(v);
    if (v === "") onValue("");
    else if (p && v.length === 10) onValue(isoDate(p));
  };
  return (
    <div {...props} style={{ width: width || "100%", ...(props.style || {}) }}>
      <TextField.Root name={name} value={text} size={size || "2"} inputMode="numeric" autoComplete="off"
                      placeholder={placeholder || "ДД.ММ.ГГГГ"} data-testid={inputTestid}
                      onChange={(e) => setText(maskDate(e.target.value))}>
        <TextField.Slot side="right">
          <Popover.Root open={open} onOpenChange={setOpen}>
            <Popover.Trigger>
              <IconButton type="button" size="1" variant="ghost" color="gray" aria-label="Выбрать дату"
                          data-testid={inputTestid ? inputTestid + "-calendar" : undefined}>
                <CalendarIcon />
              </IconButton>
            </Popover.Trigger>
            <Popover.Content size="1" align="end">
              <Calendar value={text} onPick={(v) => { setText(v); setOpen(false); }} />
            </Popover.Content>
          </Popover.Root>
        </TextField.Slot>
      </TextField.Root>
    </div>
  );
}

export function RuTimeInput({ name, defaultValue, placeholder, inputTestid, size, width, fromHour, toHour,
                              ...props }) {
  const [text, setText] = useState(String(defaultValue || ""));
  const [open, setOpen] = useState(false);
  useEffect(() => { setText(String(defaultValue || "")); }, [defaultValue, name]);
  const slots = useMemo(() => {
    const out = [];
    for (let h = fromHour ?? 8; h <= (toHour ?? 20); h++) out.push(`${pad(h)}:00`, `${pad(h)}:30`);
    return out;
  }, [fromHour, toHour]);
  return (
    <div {...props} style={{ width: width || "100%", ...(props.style || {}) }}>
      <TextField.Root name={name} value={text} size={size || "2"} inputMode="numeric" autoComplete="off"
                      placeholder={placeholder || "ЧЧ:ММ"} data-testid={inputTestid}
                      onChange={(e) => setText(maskTime(e.target.value))}>
        <TextField.Slot side="right">
          <Popover.Root open={open} onOpenChange={setOpen}>
            <Popover.Trigger>
              <IconButton type="button" size="1" variant="ghost" color="gray" aria-label="Выбрать время">
                <ClockIcon />
              </IconButton>
            </Popover.Trigger>
            <Popover.Content size="1" align="end" style={{ padding: 4 }}>
              <div style={{ maxHeight: 220, overflowY: "auto", width: 84 }} data-testid="ru-time-slots">
                {slots.map((s) => (
                  <div key={s} role="option" aria-selected={s === text} data-testid="ru-time-slot"
                       onClick={() => { setText(s); setOpen(false); }}
                       style={{ padding: "4px 10px", fontSize: 13, cursor: "pointer", borderRadius: 4,
                         background: s === text ? "var(--accent-3, #eaf2fc)" : "transparent" }}>{s}</div>
                ))}
              </div>
            </Popover.Content>
          </Popover.Root>
        </TextField.Slot>
      </TextField.Root>
    </div>
  );
}

const norm = (s) => String(s || "").toLowerCase().replace(/ё/g, "е");

export function SearchSelect({ name, options, defaultValue, placeholder, inputTestid, emptyText, size, width,
                               maxShown, ...props }) {
  const opts = options || [];
  const labelOf = (v) => (opts.find((o) => String(o.value) === String(v)) || {}).label || "";
  const [value, setValue] = useState(String(defaultValue ?? ""));
  const [text, setText] = useState(labelOf(defaultValue));
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(0);
  const box = useRef(null);
  useEffect(() => {
    setValue(String(defaultValue ?? ""));
    setText(labelOf(defaultValue));
  }, [defaultValue, name, opts.length]);
  const shown = useMemo(() => {
    const q = norm(text).trim();
    const all = q && text !== labelOf(value) ? opts.filter((o) => norm(o.label).includes(q)) : opts;
    return all.slice(0, maxShown || 100);
  }, [text, value, opts]);
  const pick = (o) => { setValue(String(o.value)); setText(o.label); setOpen(false); };
  const leave = () => {
    setOpen(false);
    if (!text.trim()) { setValue(""); return; }
    const exact = opts.find((o) => norm(o.label) === norm(text).trim());
    if (exact) pick(exact); else setText(labelOf(value));
  };
  const onKey = (e) => {
    if (e.key === "ArrowDown") { e.preventDefault(); setOpen(true); setActive((a) => Math.min(a + 1, shown.length - 1)); }
    else if (e.key === "ArrowUp") { e.preventDefault(); setActive((a) => Math.max(a - 1, 0)); }
    else if (e.key === "Enter" && open) { e.preventDefault(); if (shown[active]) pick(shown[active]); }
    else if (e.key === "Escape" && open) { e.preventDefault(); e.stopPropagation(); setOpen(false); }
  };
  return (
    <div {...props} ref={box} style={{ position: "relative", width: width || "100%", ...(props.style || {}) }}
         onBlur={(e) => { if (!box.current || !box.current.contains(e.relatedTarget)) leave(); }}>
      <input type="hidden" name={name} value={value} />
      <TextField.Root value={text} size={size || "2"} autoComplete="off" placeholder={placeholder || "Начните вводить…"}
                      data-testid={inputTestid} role="combobox" aria-expanded={open}
                      onFocus={() => { setOpen(true); setActive(0); }}
                      onChange={(e) => { setText(e.target.value); setOpen(true); setActive(0); }}
                      onKeyDown={onKey}>
        {value !== "" && (
          <TextField.Slot side="right">
            <IconButton type="button" size="1" variant="ghost" color="gray" aria-label="Очистить"
                        onMouseDown={(e) => e.preventDefault()}
                        onClick={() => { setValue(""); setText(""); setOpen(true); }}>×</IconButton>
          </TextField.Slot>
        )}
      </TextField.Root>
      {open && (
        <div role="listbox" data-testid={inputTestid ? inputTestid + "-options" : "search-select-options"}
             style={{ position: "absolute", top: "calc(100% + 4px)", left: 0, right: 0, zIndex: 60,
               maxHeight: 232, overflowY: "auto", background: "white", border: "1px solid #e3e7ec",
               borderRadius: 8, boxShadow: "0 10px 24px rgba(15, 23, 42, 0.14)", padding: 4 }}>
          {shown.length === 0 && (
            <div style={{ padding: "6px 10px", fontSize: 13, color: "#6b7785" }}>{emptyText || "Ничего не найдено"}</div>
          )}
          {shown.map((o, i) => (
            <div key={o.value} role="option" aria-selected={String(o.value) === value} tabIndex={-1}
                 data-testid="search-select-option" data-value={o.value}
                 onMouseDown={(e) => e.preventDefault()} onMouseEnter={() => setActive(i)} onClick={() => pick(o)}
                 style={{ padding: "6px 10px", fontSize: 13, cursor: "pointer", borderRadius: 5,
                   background: i === active ? "#f1f4f7" : "transparent",
                   fontWeight: String(o.value) === value ? 600 : 400 }}>{o.label}</div>
          ))}
        </div>
      )}
    </div>
  );
}
