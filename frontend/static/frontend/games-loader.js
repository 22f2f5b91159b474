// Live games (docs/games.md): loads a game's module only once the room has
// that game, so a show without games costs the page nothing more than this.
// A module's default export is called once with the events seen so far
// (the triggering snapshot or event included); it then listens to
// `showfloor:event` itself and sends with `window.showfloorRoom.send`.
const root = document.getElementById("room-games");
const modules = root ? JSON.parse(root.dataset.modules) : {};
const seen = [];
const loading = new Map();

function wanted(event) {
  const names = [];
  if (event.type === "snapshot") {
    for (const name of Object.keys(modules)) if (event[name]) names.push(name);
  } else {
    const name = event.type.split(".")[0];
    if (name in modules) names.push(name);
  }
  return names;
}

function load(name) {
  if (loading.has(name)) return;
  const started = import(modules[name]).then((module) => module.default([...seen]));
  started.catch(() => loading.delete(name));
  loading.set(name, started);
}

if (root) {
  document.addEventListener("showfloor:event", (event) => {
    const message = event.detail || {};
    if (typeof message.type !== "string") return;
    if (message.type === "snapshot") seen.length = 0;
    if (loading.size < Object.keys(modules).length) {
      seen.push(message);
      if (seen.length > 500) seen.splice(0, seen.length - 500);
    }
    wanted(message).forEach(load);
  });
}
