import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { loadConfig } from "./api/config";
import { App } from "./app/App";
import { Fatal } from "./app/Fatal";
import "./styles.css";

const root = createRoot(document.getElementById("root") as HTMLElement);

root.render(
  <div className="loading center" role="status">
    <span className="spinner" aria-hidden="true" /> Loading…
  </div>,
);

loadConfig().then(
  (config) =>
    root.render(
      <StrictMode>
        <App config={config} />
      </StrictMode>,
    ),
  (e: unknown) => root.render(<Fatal message={e instanceof Error ? e.message : String(e)} />),
);
