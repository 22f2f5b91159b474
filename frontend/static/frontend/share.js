// Share button; share-sheet.js, loaded on first tap, does the sharing.
const b = document.querySelector("[data-share-button]");
const out = document.querySelector("[data-share-status]");
if (b && out) {
  b.hidden = false;
  b.onclick = () => import("./share-sheet.js").then((m) => m.share(b, out));
}
