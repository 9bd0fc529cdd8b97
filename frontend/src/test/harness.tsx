/** Renders a screen with a real ApiClient (against a local HTTP server) and a socket the test drives. */
import { render } from "@testing-library/react";
import type { ReactElement } from "react";
import { ApiClient } from "../api/client";
import { ServicesContext } from "../app/context";
import { ReconnectingSocket } from "../ws/socket";
import { FakeSocket } from "./fakeSocket";
import type { TestServer } from "./server";

export function renderWithServices(ui: ReactElement, server: TestServer) {
  const sockets: FakeSocket[] = [];
  const api = new ApiClient({ baseUrl: `${server.url}/api`, getToken: () => Promise.resolve("tok") });
  const socket = new ReconnectingSocket({
    url: () => "ws://test/ws?token=tok",
    createSocket: (url) => {
      const s = new FakeSocket(url);
      sockets.push(s);
      return s;
    },
  });
  const services = { api, socket, user: "dev", signOut: null, models: { llms: [], embeddings: [], rerankers: [] } };
  const view = render(<ServicesContext value={services}>{ui}</ServicesContext>);
  return { ...view, socket, sockets, ws: () => sockets[sockets.length - 1] as FakeSocket };
}
