/** What the page shows when the app cannot start (its config.json did not load). */
export function Fatal({ message }: { message: string }) {
  return (
    <main className="fatal" role="alert">
      <h1>Quarry could not start</h1>
      <p>{message}</p>
      <button type="button" className="btn primary" onClick={() => window.location.reload()}>
        Reload
      </button>
    </main>
  );
}
