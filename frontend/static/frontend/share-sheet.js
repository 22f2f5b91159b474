// Share, loaded by share.js when the button is first used: the device's share
// sheet where there is one, else copy the link and say so. The server renders
// the links (share code + channel).
export async function share(b, out) {
  const d = b.dataset;
  if (navigator.share) {
    try {
      return await navigator.share({ title: d.title, url: d.urlApp });
    } catch (e) {
      if (e.name === "AbortError") return;
    }
  }
  try {
    await navigator.clipboard.writeText(d.urlCopy);
    out.textContent = d.copied;
  } catch {
    out.textContent = `${d.copyFailed} ${d.urlCopy}`;
  }
}
