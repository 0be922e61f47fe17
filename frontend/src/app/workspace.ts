/**
 * The open workflows (tabs) and their life on the server.
 *
 * Every open tab is a saved workflow: a new tab is saved at once under a fresh name, and
 * every edit after that streams to the server as a merge patch over the websocket
 * (`workflow.patch`), batched per 100 ms. The server saves it and echoes `workflow.patched`
 * to every watcher; other clients apply it, this one recognises its own client id and only
 * clears its pending timer. If no echo comes within 2 s (an older server, a lost socket), the
 * whole document is PUT instead, so nothing typed is ever lost. The names of the open tabs
 * are kept in localStorage so a reload (or a crash) reopens them as the server has them.
 */

import { api, ApiError } from "../api/client";
import type { EventSocket, WorkflowPatched } from "../api/socket";
import { toWorkflow, type Catalog, type JsonObject } from "../model";
import { DocumentTab } from "./document-tab";

const OPEN_TABS_KEY = "latentloom.openTabs";
const ACTIVE_TAB_KEY = "latentloom.activeTab";
const FLUSH_MS = 100;
const ACK_TIMEOUT_MS = 2000;

export interface WorkspaceEvents {
  onTabsChanged(): void;
  onActiveChanged(tab: DocumentTab | undefined): void;
  onRunChange(tab: DocumentTab): void;
  onRemoteChange(tab: DocumentTab): void;
  onSaved(tab: DocumentTab): void;
  toast(message: string): void;
}

export class Workspace {
  readonly tabs: DocumentTab[] = [];
  private activeTab: DocumentTab | undefined;
  private readonly flushTimers = new Map<DocumentTab, number>();
  /** Per tab: patches sent and not yet echoed, and the timer that falls back to a PUT. */
  private readonly ackTimers = new Map<DocumentTab, { count: number; timer: number }>();
  /** Saves (PUT) and patches sent but not yet confirmed; tests wait for zero. */
  pendingWrites = 0;

  /** Edits not yet acknowledged by the server, counting those still waiting to be flushed. */
  get unsavedEdits(): number {
    return this.pendingWrites + this.flushTimers.size;
  }

  constructor(
    private readonly catalog: Catalog,
    private readonly socket: EventSocket,
    readonly clientId: string,
    private readonly events: WorkspaceEvents,
  ) {
    addEventListener("pagehide", () => this.flushAll());
  }

  get active(): DocumentTab | undefined {
    return this.activeTab;
  }

  /** Re-opens the tabs of the last session, or a fresh "Untitled" one. */
  async restore(): Promise<void> {
    const names = readJson<string[]>(OPEN_TABS_KEY) ?? [];
    const active = localStorage.getItem(ACTIVE_TAB_KEY);
    for (const name of names) {
      try {
        await this.openSaved(name, false);
      } catch (error) {
        this.events.toast(`could not reopen "${name}": ${message(error)}`);
      }
    }
    const tab = this.tabs.find((candidate) => candidate.name === active) ?? this.tabs[0];
    if (tab !== undefined) this.activate(tab);
    else await this.create(undefined);
  }

  /** Opens a saved workflow (or switches to its tab if it is open already). */
  async openSaved(name: string, activate = true): Promise<DocumentTab> {
    const open = this.tabs.find((tab) => tab.name === name);
    if (open !== undefined) {
      if (activate) this.activate(open);
      return open;
    }
    const document = await api.getWorkflow(name);
    const tab = this.addTab(name, document);
    if (activate) this.activate(tab);
    return tab;
  }

  /** A new tab holding `document` (or an empty graph), saved at once under a free name. */
  async create(document: unknown, base = "Untitled"): Promise<DocumentTab> {
    const name = await this.freeName(base);
    const tab = this.addTab(name, document);
    await this.put(tab);
    this.activate(tab);
    return tab;
  }

  activate(tab: DocumentTab): void {
    this.activeTab = tab;
    localStorage.setItem(ACTIVE_TAB_KEY, tab.name);
    this.events.onActiveChanged(tab);
    this.events.onTabsChanged();
  }

  close(tab: DocumentTab): void {
    this.flush(tab);
    const index = this.tabs.indexOf(tab);
    if (index < 0) return;
    this.tabs.splice(index, 1);
    tab.dispose();
    // Another tab of this page may still show the same workflow only if it was opened twice,
    // which openSaved prevents; so nothing here follows it any more.
    this.socket.send({ type: "workflow.unwatch", name: tab.name });
    this.remember();
    if (this.activeTab === tab) {
      const next = this.tabs[Math.min(index, this.tabs.length - 1)];
      this.activeTab = undefined;
      if (next !== undefined) this.activate(next);
      else void this.create(undefined);
    }
    this.events.onTabsChanged();
  }

  /** Writes the whole document now (the explicit "Save"). */
  async save(tab: DocumentTab): Promise<void> {
    this.cancelTimers(tab);
    tab.collector.take();
    await this.put(tab);
  }

  /** A copy under a new name; another saved workflow of that name is never replaced (409). */
  async saveAs(tab: DocumentTab, name: string): Promise<DocumentTab> {
    if (this.tabs.some((other) => other.name === name)) throw new Error(`a tab named "${name}" is already open`);
    const document = toWorkflow(tab.store);
    await api.createWorkflow(name, document);
    const copy = this.addTab(name, document);
    this.activate(copy);
    return copy;
  }

  /**
   * Renames the tab's saved workflow: its latest edits are saved under the old name, then the
   * server renames it. The server never replaces another saved workflow (409 naming it); the
   * tab then keeps its name and the caller shows why.
   */
  async rename(tab: DocumentTab, name: string): Promise<void> {
    if (name === tab.name) return;
    if (this.tabs.some((other) => other.name === name)) throw new Error(`a tab named "${name}" is already open`);
    const old = tab.name;
    this.cancelTimers(tab);
    tab.collector.take();
    await this.put(tab);
    await api.renameWorkflow(old, name);
    tab.name = name;
    this.socket.send({ type: "workflow.unwatch", name: old });
    this.socket.send({ type: "workflow.watch", name });
    this.remember();
    this.events.onTabsChanged();
  }

  async remove(tab: DocumentTab): Promise<void> {
    this.cancelTimers(tab);
    await api.deleteWorkflow(tab.name);
    this.close(tab);
  }

  /** Re-sends watches after a reconnect (the server forgets them with the socket). */
  rewatch(): void {
    for (const tab of this.tabs) this.socket.send({ type: "workflow.watch", name: tab.name });
  }

  onPatched(patched: WorkflowPatched): void {
    const tab = this.tabs.find((candidate) => candidate.name === patched.name);
    if (tab === undefined) return;
    if (patched.client === this.clientId) {
      this.acknowledge(tab);
      return;
    }
    try {
      // Parsed from the server's JSON frame, so it is JSON through and through.
      tab.collector.acceptRemote(patched.patch as unknown as JsonObject);
      this.events.onRemoteChange(tab);
    } catch (error) {
      // Our copy and the server's disagree beyond repair: take the server's.
      this.events.toast(`reloading "${tab.name}": ${message(error)}`);
      void this.reload(tab);
    }
  }

  /** The server refused something we sent: fall back to saving whole documents. */
  onServerError(detail: string): void {
    for (const tab of [...this.ackTimers.keys()]) this.fallbackPut(tab);
    this.events.toast(detail);
  }

  flushAll(): void {
    for (const tab of this.tabs) this.flush(tab);
  }

  private addTab(name: string, document: unknown): DocumentTab {
    const tab: DocumentTab = new DocumentTab(
      name,
      document,
      this.catalog,
      () => this.events.onRunChange(tab),
      () => this.scheduleFlush(tab),
    );
    this.tabs.push(tab);
    this.socket.send({ type: "workflow.watch", name });
    this.remember();
    return tab;
  }

  private scheduleFlush(tab: DocumentTab): void {
    if (this.flushTimers.has(tab)) return;
    this.flushTimers.set(tab, window.setTimeout(() => this.flush(tab), FLUSH_MS));
  }

  private flush(tab: DocumentTab): void {
    const timer = this.flushTimers.get(tab);
    if (timer !== undefined) clearTimeout(timer);
    this.flushTimers.delete(tab);
    const patch = tab.collector.take();
    if (patch === undefined) return;
    this.socket.send({ type: "workflow.patch", name: tab.name, client: this.clientId, patch });
    const waiting = this.ackTimers.get(tab);
    if (waiting !== undefined) clearTimeout(waiting.timer);
    else this.pendingWrites += 1;
    this.ackTimers.set(tab, { count: (waiting?.count ?? 0) + 1, timer: window.setTimeout(() => this.fallbackPut(tab), ACK_TIMEOUT_MS) });
  }

  private acknowledge(tab: DocumentTab, all = false): void {
    const waiting = this.ackTimers.get(tab);
    if (waiting === undefined) return;
    waiting.count -= 1;
    if (waiting.count > 0 && !all) return;
    clearTimeout(waiting.timer);
    this.ackTimers.delete(tab);
    this.pendingWrites -= 1;
    this.events.onSaved(tab);
  }

  private fallbackPut(tab: DocumentTab): void {
    this.acknowledge(tab, true);
    if (this.tabs.includes(tab)) void this.put(tab).catch((error: unknown) => this.events.toast(`saving "${tab.name}" failed: ${message(error)}`));
  }

  private cancelTimers(tab: DocumentTab): void {
    const flush = this.flushTimers.get(tab);
    if (flush !== undefined) clearTimeout(flush);
    this.flushTimers.delete(tab);
    this.acknowledge(tab, true);
  }

  private async put(tab: DocumentTab): Promise<void> {
    this.pendingWrites += 1;
    try {
      await api.putWorkflow(tab.name, toWorkflow(tab.store));
      this.events.onSaved(tab);
    } finally {
      this.pendingWrites -= 1;
    }
  }

  private async reload(tab: DocumentTab): Promise<void> {
    const document = await api.getWorkflow(tab.name);
    const index = this.tabs.indexOf(tab);
    const fresh = new DocumentTab(tab.name, document, this.catalog, () => this.events.onRunChange(fresh), () => this.scheduleFlush(fresh));
    fresh.view = tab.view;
    fresh.fitted = true;
    this.tabs.splice(index, 1, fresh);
    tab.dispose();
    if (this.activeTab === tab) this.activate(fresh);
  }

  private async freeName(base: string): Promise<string> {
    const taken = new Set([...this.tabs.map((tab) => tab.name), ...(await api.workflows()).workflows.map((info) => info.name)]);
    const clean = base.replace(/[^\p{L}\p{N} _.-]+/gu, " ").trim().replace(/\.+$/, "") || "Untitled";
    if (!taken.has(clean)) return clean;
    let counter = 2;
    while (taken.has(`${clean} ${counter}`)) counter += 1;
    return `${clean} ${counter}`;
  }

  private remember(): void {
    localStorage.setItem(OPEN_TABS_KEY, JSON.stringify(this.tabs.map((tab) => tab.name)));
  }
}

function readJson<T>(key: string): T | undefined {
  try {
    const text = localStorage.getItem(key);
    return text === null ? undefined : (JSON.parse(text) as T);
  } catch {
    return undefined;
  }
}

export function message(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  return error instanceof Error ? error.message : String(error);
}
