// The listening-test page: plain JavaScript, no build step. The server holds the plan and
// every answer; this page keeps only the session id (in localStorage and the address), so a
// reload asks the server where the listener is and continues there.
"use strict";

const KEY = "tts-jax-listen-session";
const main = document.getElementById("main");
let state = null;

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function showError(message) {
  const box = document.getElementById("error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(method, url, body) {
  const response = await fetch(url, {
    method,
    headers: body ? { "Content-Type": "application/json" } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
  return data;
}

const INSTRUCTIONS = {
  mushra:
    "Each screen plays one sentence. Listen to the Reference, then to every sample A, B, … " +
    "(one of them is the reference itself, hidden) and rate each against the reference on " +
    "the 0–100 scale. Switch between them as often as you like.",
  mos: "Each screen plays one sample. Listen to it and rate the quality of the speech.",
  ab: "Each screen plays one sentence spoken twice, A and B. Listen to both and say which sounds better, or that you have no preference.",
};

function remember(session) {
  localStorage.setItem(KEY, session);
  const url = new URL(location.href);
  url.searchParams.set("session", session);
  history.replaceState(null, "", url);
}

async function start() {
  const session = new URLSearchParams(location.search).get("session") || localStorage.getItem(KEY);
  if (session) {
    try {
      state = await api("GET", `/api/session/${encodeURIComponent(session)}`);
      remember(state.session);
      return show();
    } catch (e) {
      localStorage.removeItem(KEY);
    }
  }
  welcome();
}

function welcome() {
  const name = el("input", { id: "name", maxlength: "80", placeholder: "your name or initials" });
  const go = el("button", {
    id: "start",
    text: "Start",
    onclick: async () => {
      try {
        state = await api("POST", "/api/session", { name: name.value });
        remember(state.session);
        show();
      } catch (e) {
        showError(e.message);
      }
    },
  });
  main.replaceChildren(el("p", { text: "Your name (optional): " }, name), go);
}

async function show() {
  showError("");
  document.getElementById("title").textContent = state.title;
  document.title = state.title;
  if (state.next === null) {
    document.getElementById("progress").textContent = `${state.total} of ${state.total} answered`;
    main.replaceChildren(el("p", { id: "done", text: "Thank you: every trial is answered." }));
    return;
  }
  document.getElementById("progress").textContent =
    `Trial ${state.answered + 1} of ${state.total} · session ${state.session}`;
  const trial = await api("GET", `/api/session/${state.session}/trial/${state.next}`);
  renderTrial(trial);
}

// One <audio> per sample of the trial; playing one stops the others.
function players(trial, names) {
  const plays = {};
  const audios = {};
  const buttons = {};
  let onChange = () => {};
  for (const slot of names) {
    plays[slot] = 0;
    const audio = new Audio(`/api/audio/${state.session}/${trial.index}/${slot}`);
    audio.preload = "auto";
    audios[slot] = audio;
    const label = slot === "ref" ? "Reference" : slot;
    const button = el("button", { class: "play", "data-slot": slot, text: `▶ ${label}` });
    button.addEventListener("click", () => {
      if (!audio.paused) return audio.pause();
      for (const other of Object.values(audios)) if (other !== audio) other.pause();
      audio.currentTime = 0;
      audio.play().catch((e) => showError(`cannot play ${label}: ${e.message}`));
    });
    audio.addEventListener("play", () => {
      plays[slot] += 1;
      button.classList.add("played", "playing");
      onChange();
    });
    audio.addEventListener("pause", () => button.classList.remove("playing"));
    audio.addEventListener("ended", () => button.classList.remove("playing"));
    buttons[slot] = button;
  }
  return {
    plays,
    buttons,
    stop: () => Object.values(audios).forEach((a) => a.pause()),
    allPlayed: () => trial.slots.every((s) => plays[s] > 0),
    onChange: (f) => (onChange = f),
  };
}

function renderTrial(trial) {
  const names = trial.reference ? ["ref", ...trial.slots] : trial.slots;
  const p = players(trial, names);
  const submit = el("button", { id: "submit", text: "Next ▸", disabled: "" });
  const parts = [el("p", { class: "instructions", text: INSTRUCTIONS[state.type] })];
  if (trial.text) parts.push(el("p", { class: "text", text: `“${trial.text}”` }));
  let answer;

  if (state.type === "mushra") {
    const scale = el("div", { class: "scale" });
    for (const [low, label] of Object.entries(state.scale).sort((a, b) => b[0] - a[0]))
      scale.append(el("span", { text: label }));
    const row = el("div", { class: "mushra" }, scale);
    const sliders = {};
    for (const slot of trial.slots) {
      const [lo, hi] = state.score_range;
      const slider = el("input", {
        type: "range", class: "score", "data-slot": slot, min: lo, max: hi, step: "1", value: lo,
        "aria-label": `score of ${slot}`,
      });
      const value = el("output", { text: String(lo) });
      slider.addEventListener("input", () => (value.textContent = slider.value));
      sliders[slot] = slider;
      row.append(el("div", { class: "condition" }, p.buttons[slot], slider, value));
    }
    parts.push(el("div", {}, p.buttons.ref), row);
    answer = () => ({
      scores: Object.fromEntries(trial.slots.map((s) => [s, Number(sliders[s].value)])),
    });
    p.onChange(() => (submit.disabled = !p.allPlayed()));
  } else {
    parts.push(el("div", {}, ...trial.slots.map((s) => p.buttons[s])));
    const options =
      state.type === "mos"
        ? Object.entries(state.scale).sort((a, b) => b[0] - a[0]).map(([v, l]) => [v, `${v} ${l}`])
        : [["A", "A sounds better"], ["B", "B sounds better"], ["none", "No preference"]];
    const legend = state.type === "mos" ? state.question : "Which sounds better?";
    const set = el("fieldset", {}, el("legend", { text: legend }));
    for (const [value, label] of options) {
      const input = el("input", { type: "radio", name: "choice", value });
      input.addEventListener("change", () => ready());
      set.append(el("label", {}, input, ` ${label}`));
    }
    parts.push(set);
    const picked = () => main.querySelector("input[name=choice]:checked");
    const ready = () => (submit.disabled = !(p.allPlayed() && picked()));
    p.onChange(ready);
    answer = () =>
      state.type === "mos"
        ? { scores: { [trial.slots[0]]: Number(picked().value) } }
        : { choice: picked().value };
  }

  submit.addEventListener("click", async () => {
    submit.disabled = true;
    p.stop();
    try {
      state = await api("POST", "/api/answer", {
        session: state.session, trial: trial.index, plays: p.plays, ...answer(),
      });
      show();
    } catch (e) {
      showError(e.message);
      submit.disabled = false;
    }
  });
  parts.push(submit);
  main.replaceChildren(...parts);
}

start();
