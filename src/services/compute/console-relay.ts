import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { appendAuditAlone } from '../../platform/audit/audit.js';
import type { Database } from '../../platform/db/database.js';
import { notFound, YunhaiError } from '../../platform/errors.js';
import type { Principal } from '../../platform/policy/principal.js';
import { principalLabel } from '../../platform/policy/principal.js';
import type { HostNotifier } from '../hosts/notifier.js';
import type { ComputeService } from './service.js';

/**
 * WebSocket close codes of the interactive console. 4000–4999 are ours; the portal and the
 * CLI show the reason text.
 */
export const CONSOLE_CLOSE = {
  /** The last viewer left (agent side) or the control plane is shutting down. */
  normal: 1000,
  /** No or bad credentials. */
  unauthenticated: 4401,
  /** The caller may see the instance but not use its console. */
  forbidden: 4403,
  /** No such instance (or another tenant's). */
  notFound: 4404,
  /** The instance is not running. */
  notRunning: 4409,
  /** The agent asked for a session nobody is watching. */
  noSession: 4410,
  /** The host agent's side of the console went away. */
  agentGone: 4502,
  /** No host agent attached to the session in time. */
  agentTimeout: 4504,
} as const;

const INSTANCE_ID = /^i-[a-z0-9]{12}$/;
/** Input typed before the agent attaches is kept (up to this much) and delivered when it does. */
const MAX_PENDING_INPUT = 64 * 1024;
/** A viewer that does not read its output is dropped once this much is queued for it. */
const MAX_VIEWER_BUFFER = 4 * 1024 * 1024;

/** Close reasons must fit in a control frame (123 bytes). */
const reasonText = (s: string) => {
  const b = Buffer.from(s, 'utf8');
  return b.length <= 123
    ? s
    : b
        .subarray(0, 120)
        .toString('utf8')
        .replace(/\uFFFD+$/, '') + '...';
};

export function closeSocket(ws: WebSocket, code: number, reason: string) {
  if (ws.readyState === ws.CLOSING || ws.readyState === ws.CLOSED) return;
  try {
    ws.close(code, reasonText(reason));
  } catch {
    ws.terminate();
  }
}

/**
 * Holds a socket's frames until the handler is ready (authentication is asynchronous, and frames
 * that arrive before a 'message' listener exists are lost).
 */
export function holdMessages(ws: WebSocket) {
  const held: Buffer[] = [];
  let target: ((data: Buffer) => void) | undefined;
  ws.on('message', (data, isBinary) => {
    void isBinary;
    const buf = Array.isArray(data)
      ? Buffer.concat(data)
      : Buffer.isBuffer(data)
        ? data
        : Buffer.from(data as ArrayBuffer);
    if (target) target(buf);
    else held.push(buf);
  });
  return {
    release(fn: (data: Buffer) => void) {
      target = fn;
      for (const b of held.splice(0)) fn(b);
    },
  };
}

interface Session {
  instanceId: string;
  hostId: string;
  viewers: Set<WebSocket>;
  agent?: WebSocket;
  pendingInput: Buffer[];
  pendingBytes: number;
  agentTimer?: NodeJS.Timeout;
}

/**
 * The console hub: per instance, the tenants' viewer sockets on one side and the host agent's
 * socket on the other. Any viewer's keystrokes go to the guest; guest output goes to every
 * viewer. The first viewer asks the host's agent (through its desired-state long poll) to attach;
 * the last one leaving closes the agent's socket. In-process: a session lives on the control
 * plane replica the viewer connected to, and the agent's socket must reach the same one.
 */
export function createConsoleRelay(deps: { notifier: HostNotifier; agentWaitMs?: number; logger?: Logger }) {
  const { notifier, logger } = deps;
  const agentWaitMs = deps.agentWaitMs ?? 5000;
  const sessions = new Map<string, Session>();
  /** Bumped whenever a host's set of wanted console sessions changes. */
  const generations = new Map<string, number>();

  const changed = (hostId: string) => {
    generations.set(hostId, (generations.get(hostId) ?? 0) + 1);
    notifier.notify(hostId);
  };

  function end(s: Session, code: number, reason: string) {
    if (sessions.get(s.instanceId) !== s) return;
    sessions.delete(s.instanceId);
    clearTimeout(s.agentTimer);
    for (const v of s.viewers) closeSocket(v, code, reason);
    s.viewers.clear();
    if (s.agent) closeSocket(s.agent, CONSOLE_CLOSE.normal, 'console session ended');
    s.agent = undefined;
    changed(s.hostId);
  }

  function toViewers(s: Session, data: Buffer) {
    for (const v of s.viewers) {
      if (v.readyState !== v.OPEN) continue;
      if (v.bufferedAmount > MAX_VIEWER_BUFFER) {
        closeSocket(v, 4008, 'viewer is not reading its console output');
        continue;
      }
      v.send(data, { binary: true });
    }
  }

  return {
    /** Adds a viewer; the socket must already be authorised for the instance, which runs on `hostId`. */
    attachViewer(instanceId: string, hostId: string, ws: WebSocket, input: ReturnType<typeof holdMessages>) {
      let s = sessions.get(instanceId);
      if (s && s.hostId !== hostId) {
        end(s, CONSOLE_CLOSE.agentGone, 'the instance moved to another host');
        s = undefined;
      }
      if (!s) {
        const fresh: Session = { instanceId, hostId, viewers: new Set(), pendingInput: [], pendingBytes: 0 };
        fresh.agentTimer = setTimeout(() => {
          if (!fresh.agent)
            end(
              fresh,
              CONSOLE_CLOSE.agentTimeout,
              `the host agent did not attach to the console within ${Math.round(agentWaitMs / 1000)} s`,
            );
        }, agentWaitMs);
        fresh.agentTimer.unref();
        sessions.set(instanceId, fresh);
        s = fresh;
        changed(hostId);
      }
      const session = s;
      session.viewers.add(ws);
      ws.on('close', () => {
        session.viewers.delete(ws);
        if (session.viewers.size === 0) end(session, CONSOLE_CLOSE.normal, 'console session ended');
      });
      input.release((data) => {
        if (sessions.get(instanceId) !== session) return;
        const agent = session.agent;
        if (agent && agent.readyState === agent.OPEN) {
          agent.send(data, { binary: true });
        } else if (session.pendingBytes + data.length <= MAX_PENDING_INPUT) {
          session.pendingInput.push(data);
          session.pendingBytes += data.length;
        }
      });
    },

    /** The host agent's side of a session; closes the socket when nobody is watching. */
    attachAgent(instanceId: string, hostId: string, ws: WebSocket, output: ReturnType<typeof holdMessages>) {
      const s = sessions.get(instanceId);
      if (!s || s.hostId !== hostId) {
        closeSocket(ws, CONSOLE_CLOSE.noSession, `no console session is open for ${instanceId}`);
        return;
      }
      if (s.agent) closeSocket(s.agent, CONSOLE_CLOSE.normal, 'replaced by a newer agent connection');
      s.agent = ws;
      clearTimeout(s.agentTimer);
      for (const b of s.pendingInput.splice(0)) ws.send(b, { binary: true });
      s.pendingBytes = 0;
      ws.on('close', (code, reason) => {
        if (s.agent !== ws) return;
        s.agent = undefined;
        const why = reason.toString('utf8') || 'the host agent closed the console';
        logger?.info({ instanceId, code, reason: why }, 'console agent socket closed');
        // A code the agent chose (e.g. 4409 not running) reaches the viewers as is.
        end(s, code >= 4000 && code <= 4999 ? code : CONSOLE_CLOSE.agentGone, why);
      });
      output.release((data) => {
        if (s.agent === ws) toViewers(s, data);
      });
    },

    /** What the host's agent should have open: instance ids with viewers, and a change counter. */
    sessionsFor(hostId: string): { generation: number; instanceIds: string[] } {
      const ids: string[] = [];
      for (const s of sessions.values()) if (s.hostId === hostId) ids.push(s.instanceId);
      return { generation: generations.get(hostId) ?? 0, instanceIds: ids.sort() };
    },

    /** Live counts, for tests and metrics. */
    stats(instanceId: string) {
      const s = sessions.get(instanceId);
      return { viewers: s?.viewers.size ?? 0, agent: s?.agent !== undefined };
    },

    /** Ends every session (shutdown). */
    closeAll() {
      for (const s of [...sessions.values()]) end(s, 1001, 'the control plane is shutting down');
    },
  };
}

export type ConsoleRelay = ReturnType<typeof createConsoleRelay>;

/**
 * `GET <prefix>/instances/{id}/console/ws`: the tenant's interactive serial console. The caller
 * authenticates with `Authorization: Bearer`, a `?token=` query parameter (browsers cannot set
 * headers on WebSockets) or SigV4; failures close the socket with a 44xx code and a reason.
 */
export function registerConsoleWsRoute(
  app: FastifyInstance,
  prefix: string,
  deps: {
    relay: ConsoleRelay;
    compute: ComputeService;
    database: Database;
    authenticate: (req: FastifyRequest, queryToken: string | undefined) => Promise<Principal>;
  },
) {
  const { relay, compute, database } = deps;
  app.get(`${prefix}/instances/:id/console/ws`, { websocket: true }, (ws, req) => {
    const input = holdMessages(ws);
    const { id } = req.params as { id: string };
    const query = req.query as Record<string, string | string[] | undefined>;
    const token = typeof query.token === 'string' && query.token !== '' ? query.token : undefined;
    void (async () => {
      let principal: Principal;
      try {
        principal = await deps.authenticate(req, token);
      } catch (e) {
        const msg = e instanceof YunhaiError ? e.message : 'authentication failed';
        return closeSocket(ws, CONSOLE_CLOSE.unauthenticated, msg);
      }
      if (!INSTANCE_ID.test(id))
        return closeSocket(ws, CONSOLE_CLOSE.notFound, notFound('Instance', id).message);
      const ctx = { requestId: req.id, sourceIp: req.ip, principal };
      let row: Awaited<ReturnType<ComputeService['visibleInstance']>>;
      try {
        row = await compute.visibleInstance(ctx, id, 'compute:ConnectConsole');
      } catch (e) {
        if (e instanceof YunhaiError && e.code === 'NotFound')
          return closeSocket(ws, CONSOLE_CLOSE.notFound, e.message);
        if (e instanceof YunhaiError && (e.code === 'AccessDenied' || e.code === 'TenantSuspended'))
          return closeSocket(ws, CONSOLE_CLOSE.forbidden, e.message);
        throw e;
      }
      if (row.state !== 'running' || !row.host_id)
        return closeSocket(ws, CONSOLE_CLOSE.notRunning, `Instance ${id} is ${row.state}, not running.`);
      await appendAuditAlone(database, {
        tenantId: row.tenant_id,
        principal: principalLabel(principal),
        action: 'compute:ConnectConsole',
        resource: `instance/${row.id}`,
        outcome: 'success',
        sourceIp: req.ip,
        requestId: req.id,
      });
      if (ws.readyState !== ws.OPEN) return;
      relay.attachViewer(id, row.host_id, ws, input);
    })().catch((err) => {
      req.log.error({ err: String(err), instanceId: id }, 'console connect failed');
      closeSocket(ws, 1011, 'internal error');
    });
  });
}
