import { createContext, useContext } from "react";
import type { Client } from "./api";

export const ClientContext = createContext<Client | null>(null);

export function useClient(): Client {
  const c = useContext(ClientContext);
  if (!c) throw new Error("no API client: wrap the dashboard in <ClientContext.Provider>");
  return c;
}
