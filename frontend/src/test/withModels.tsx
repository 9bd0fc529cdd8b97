/** Overrides what `GET /models` answered for the components inside it (the harness offers no models). */
import type { ReactNode } from "react";
import type { ModelsOut } from "../api/types";
import { ServicesContext, useServices } from "../app/context";

export function WithModels({ models, error = null, children }: { models: ModelsOut | null; error?: unknown; children: ReactNode }) {
  const services = useServices();
  return <ServicesContext value={{ ...services, models, modelsError: error }}>{children}</ServicesContext>;
}
