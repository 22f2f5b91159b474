// What the player and the studio share about WebRTC.

const ICE_GATHER_TIMEOUT_MS = 2000;

/** Resolve once ICE gathering completes (the server takes no trickled
 * candidates), or after a short timeout with what was gathered so far. */
export function waitForIce(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ICE_GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") { clearTimeout(timer); resolve(); }
    });
  });
}
