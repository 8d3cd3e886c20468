// The overview refreshes its figures without reloading the page: every few
// seconds it fetches the server-rendered fragment and swaps it in.
(function () {
  const live = document.querySelector("[data-live]");
  if (!live) return;
  const every = Number(live.dataset.every || 5000);
  async function refresh() {
    try {
      const answer = await fetch(live.dataset.live, { credentials: "same-origin" });
      if (answer.redirected || !answer.ok) return; // signed out: the next navigation shows it
      live.innerHTML = await answer.text();
      live.dataset.refreshes = String(Number(live.dataset.refreshes || 0) + 1);
    } catch (err) {
      // the hub restarting: keep what is shown and try again
    } finally {
      setTimeout(refresh, every);
    }
  }
  setTimeout(refresh, every);
})();
