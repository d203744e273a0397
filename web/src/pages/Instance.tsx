import { useQuery } from '@tanstack/react-query';
import { FitAddon } from '@xterm/addon-fit';
import { Terminal } from '@xterm/xterm';
import '@xterm/xterm/css/xterm.css';
import { Alert, Button, Card, Descriptions, Skeleton, Space, Tabs, Tag, Typography } from 'antd';
import { useEffect, useRef, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate, useParams } from 'react-router-dom';
import { API, type Flavor, get, type Image, type Instance, type Page } from '../api';
import { formatTime, PageTitle, QueryError, stateColor } from '../components';
import { InstanceActions } from './Instances';

/** The interactive serial console: xterm.js over the console WebSocket (the session cookie authenticates it). */
function SerialConsole({ id }: { id: string }) {
  const { t } = useTranslation();
  const el = useRef<HTMLDivElement>(null);
  const [status, setStatus] = useState<'connecting' | 'open' | 'closed'>('connecting');
  const [reason, setReason] = useState('');
  const [attempt, setAttempt] = useState(0);
  useEffect(() => {
    if (!el.current) return;
    const term = new Terminal({ cursorBlink: true, fontSize: 14, convertEol: false, scrollback: 5000 });
    const fit = new FitAddon();
    term.loadAddon(fit);
    term.open(el.current);
    fit.fit();
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}${API}/instances/${id}/console/ws`);
    ws.binaryType = 'arraybuffer';
    setStatus('connecting');
    ws.onopen = () => {
      setStatus('open');
      term.focus();
    };
    ws.onmessage = (e) => {
      term.write(typeof e.data === 'string' ? e.data : new Uint8Array(e.data as ArrayBuffer));
    };
    ws.onclose = (e) => {
      setStatus('closed');
      setReason(e.reason || String(e.code));
    };
    const enc = new TextEncoder();
    const sub = term.onData((d) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(enc.encode(d));
    });
    const onResize = () => fit.fit();
    window.addEventListener('resize', onResize);
    return () => {
      window.removeEventListener('resize', onResize);
      sub.dispose();
      ws.close();
      term.dispose();
    };
  }, [id, attempt]);
  return (
    <Space direction="vertical" style={{ width: '100%' }}>
      <Space wrap>
        <Tag color={status === 'open' ? 'green' : status === 'connecting' ? 'blue' : 'red'} data-testid="console-status">
          {t(`console.${status}`)}
        </Tag>
        {status === 'closed' ? (
          <>
            <Typography.Text type="secondary">{reason}</Typography.Text>
            <Button size="small" onClick={() => setAttempt((a) => a + 1)}>
              {t('console.reconnect')}
            </Button>
          </>
        ) : null}
        <Typography.Text type="secondary">{t('console.hint')}</Typography.Text>
      </Space>
      <div className="yh-terminal" data-testid="terminal" aria-label={t('console.interactive')}>
        <div ref={el} style={{ height: 360 }} />
      </div>
    </Space>
  );
}

/** The console log: what the guest wrote to its serial port, followed by offset. */
function ConsoleLog({ id }: { id: string }) {
  const { t } = useTranslation();
  const [text, setText] = useState('');
  const offset = useRef(0);
  const q = useQuery({
    queryKey: ['instances', id, 'console-log'],
    queryFn: async () => {
      const r = await get<{ data: string; next: number; size: number }>(`/instances/${id}/console?offset=${offset.current}`);
      if (r.data) setText((s) => (s + r.data).slice(-200_000));
      offset.current = r.next;
      return r;
    },
    refetchInterval: 3000,
  });
  return (
    <>
      <QueryError error={q.error} />
      <pre className="yh-mono" data-testid="console-log" style={{ background: '#111', color: '#ddd', padding: 12, maxHeight: 420, overflow: 'auto', whiteSpace: 'pre-wrap' }}>
        {text || t('console.noOutput')}
      </pre>
    </>
  );
}

export function InstancePage() {
  const { t } = useTranslation();
  const { id } = useParams();
  const nav = useNavigate();
  const q = useQuery({ queryKey: ['instances', id], queryFn: () => get<Instance>(`/instances/${id}`), refetchInterval: 3000 });
  const inst = q.data;
  const images = useQuery({ queryKey: ['images', 'all'], queryFn: () => get<Page<Image>>('/images?limit=1000') });
  const flavors = useQuery({ queryKey: ['flavors'], queryFn: () => get<Page<Flavor>>('/flavors?limit=1000') });
  const imageName = (id: string) => images.data?.items.find((i) => i.id === id)?.name ?? id;
  const flavorName = (id: string) => flavors.data?.items.find((f) => f.id === id)?.name ?? id;
  return (
    <>
      <PageTitle
        title={inst ? inst.name : t('nav.instances')}
        extra={inst ? <InstanceActions inst={inst} onDeleted={() => nav('/instances')} /> : null}
      />
      <QueryError error={q.error} />
      {q.isLoading || !inst ? (
        <Skeleton active />
      ) : (
        <>
          <Card style={{ marginBottom: 16 }}>
            <Descriptions column={{ xs: 1, sm: 2, lg: 3 }} size="small">
              <Descriptions.Item label={t('instances.state')}>
                <Tag color={stateColor[inst.state]} data-testid="instance-state">
                  {t(`states.${inst.state}`, { defaultValue: inst.state })}
                </Tag>
                {inst.guestReady ? <Tag color="green">{t('instances.guestReady')}</Tag> : null}
              </Descriptions.Item>
              <Descriptions.Item label={t('common.id')}>{inst.id}</Descriptions.Item>
              <Descriptions.Item label={t('instances.size')}>{`${inst.vcpus} vCPU / ${inst.memoryMiB} MiB / ${inst.diskGiB} GiB`}</Descriptions.Item>
              <Descriptions.Item label={t('instances.image')}>{imageName(inst.imageId)}</Descriptions.Item>
              <Descriptions.Item label={t('instances.flavor')}>{flavorName(inst.flavorId)}</Descriptions.Item>
              <Descriptions.Item label={t('instances.keyPair')}>{inst.keyName ?? '-'}</Descriptions.Item>
              <Descriptions.Item label={t('instances.host')}>{inst.hostId ?? '-'}</Descriptions.Item>
              <Descriptions.Item label={t('common.created')}>{formatTime(inst.createdAt)}</Descriptions.Item>
              <Descriptions.Item label={t('instances.launchedAt')}>{formatTime(inst.launchedAt)}</Descriptions.Item>
            </Descriptions>
            {inst.errorReason ? <Alert type="error" showIcon message={inst.errorReason} /> : null}
          </Card>
          <Card>
            <Tabs
              items={[
                {
                  key: 'console',
                  label: t('console.interactive'),
                  children:
                    inst.state === 'running' ? <SerialConsole id={inst.id} /> : <Alert type="info" showIcon message={t('console.notRunning')} />,
                },
                { key: 'log', label: t('console.log'), children: <ConsoleLog id={inst.id} /> },
              ]}
            />
          </Card>
        </>
      )}
    </>
  );
}
