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
import type { EventSocket, WorkflowPatched, WorkflowWatching } from "../api/socket";
import type { JobView } from "../api/types";
import { isJsonObject, toWorkflow, type Catalog, type Json, type JsonObject } from "../model";
import { applyMergePatch, createMergePatch, isEmptyPatch } from "../sync/merge-patch";
import { DocumentTab } from "./document-tab";
import type { NodeStatus } from "./run-state";

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
    // These maps are keyed by tab: a closed tab must not stay reachable through them.
    this.revisions.delete(tab);
    this.confirmed.delete(tab);
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

  /**
   * Re-sends watches after a reconnect (the server forgets them with the socket), with the
   * revision each tab last saw: the server answers with the document if it has moved on.
   */
  rewatch(): void {
    for (const tab of this.tabs) this.watch(tab);
  }

  private watch(tab: DocumentTab): void {
    const revision = this.revisions.get(tab);
    this.socket.send(revision === undefined ? { type: "workflow.watch", name: tab.name } : { type: "workflow.watch", name: tab.name, revision });
  }

  /**
   * Sync state per tab: the server's revision and document as last confirmed. What this tab
   * sent and the server has not echoed yet is `createMergePatch(confirmed, shadow)`.
   */
  private readonly revisions = new Map<DocumentTab, number>();
  private readonly confirmed = new Map<DocumentTab, JsonObject>();

  onPatched(patched: WorkflowPatched): void {
    const tab = this.tabs.find((candidate) => candidate.name === patched.name);
    if (tab === undefined) return;
    this.revisions.set(tab, patched.revision);
    // Parsed from the server's JSON frame, so it is JSON through and through.
    const patch = patched.patch as unknown as JsonObject;
    const confirmed = asObject(applyMergePatch(this.confirmed.get(tab) ?? {}, patch));
    if (patched.client === this.clientId) {
      this.confirmed.set(tab, confirmed);
      this.acknowledge(tab);
      return;
    }
    this.rebase(tab, confirmed, false);
  }

  /** The reply to a watch: a document means the tab missed changes (or is new). */
  onWatching(watching: WorkflowWatching): void {
    const tab = this.tabs.find((candidate) => candidate.name === watching.name);
    if (tab === undefined) return;
    this.revisions.set(tab, watching.revision);
    const document = watching.document as unknown as Json | null | undefined;
    if (document === undefined) return;
    this.rebase(tab, isJsonObject(document) ? document : (this.confirmed.get(tab) ?? {}), true);
  }

  /**
   * The server's document is now `confirmed`: show it with this tab's unconfirmed edits on
   * top (they land after it on the server too), and after a reconnect send them again on the
   * new revision (merge patches are idempotent, so one the server already had does no harm).
   */
  private rebase(tab: DocumentTab, confirmed: JsonObject, resend: boolean): void {
    const pending = asObject(createMergePatch(this.confirmed.get(tab) ?? confirmed, tab.collector.shadow));
    this.confirmed.set(tab, confirmed);
    const target = asObject(applyMergePatch(confirmed, pending));
    try {
      const change = asObject(createMergePatch(tab.collector.shadow, target));
      if (!isEmptyPatch(change)) {
        tab.collector.acceptRemote(change);
        this.events.onRemoteChange(tab);
      }
    } catch (error) {
      // Our copy and the server's disagree beyond repair: take the server's.
      this.events.toast(`reloading "${tab.name}": ${message(error)}`);
      void this.reload(tab);
      return;
    }
    if (resend && !isEmptyPatch(pending)) {
      this.acknowledge(tab, true);
      this.sendPatch(tab, pending);
    }
  }

  /** After events were lost (a server restart): the run states of each tab's latest job. */
  async resync(): Promise<void> {
    for (const tab of this.tabs) {
      const latest = [...tab.jobs].at(-1);
      if (latest === undefined) continue;
      const response = await fetch(`/api/jobs/${encodeURIComponent(latest)}`);
      if (!response.ok) {
        tab.run.reset([], undefined);
        continue;
      }
      const job = (await response.json()) as JobView;
      const live = job.status === "queued" || job.status === "running";
      tab.run.reset(live ? [...tab.store.list("node")].map((node) => node.id) : [], live ? "queued" : undefined);
      for (const [node, state] of Object.entries(job.nodes)) tab.run.set(node, { status: NODE_STATUS[state] });
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
    this.confirmed.set(tab, tab.collector.shadow);
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
    this.sendPatch(tab, patch);
  }

  private sendPatch(tab: DocumentTab, patch: JsonObject): void {
    const base = this.revisions.get(tab);
    const message = { type: "workflow.patch", name: tab.name, client: this.clientId, patch };
    this.socket.send(base === undefined ? message : { ...message, base });
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
    const waiting = this.ackTimers.get(tab);
    if (!this.socket.connected && waiting !== undefined) {
      // Offline, the patch waits in the socket's outbox and is rebased on reconnect; a whole-
      // document PUT now (the network may be back before the socket) would overwrite what
      // other tabs saved meanwhile. Keep waiting.
      waiting.timer = window.setTimeout(() => this.fallbackPut(tab), ACK_TIMEOUT_MS);
      return;
    }
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

const NODE_STATUS: Record<JobView["nodes"][string], NodeStatus> = {
  started: "running",
  cached: "cached",
  finished: "done",
  failed: "failed",
};

function asObject(value: Json): JsonObject {
  return isJsonObject(value) ? value : {};
}

export function message(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  return error instanceof Error ? error.message : String(error);
}
