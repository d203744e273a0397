import { Button, Popconfirm, Progress, Space, Tag, Tooltip } from 'antd';
import { useTranslation } from 'react-i18next';
import { api, get, type Host, type Page } from '../../api';
import { CursorTable, formatTime, PageTitle, stateColor, useAction } from '../../components';

function Bar({ used, total, label }: { used: number; total: number; label: string }) {
  const pct = total > 0 ? Math.round((used / total) * 100) : 0;
  return (
    <Tooltip title={`${label}: ${used} / ${total}`}>
      <Progress percent={pct} size="small" status={pct > 100 ? 'exception' : 'normal'} format={() => `${used}/${total}`} style={{ minWidth: 140 }} aria-label={label} />
    </Tooltip>
  );
}

export function HostsPage() {
  const { t } = useTranslation();
  const drain = useAction((id: string) => api('POST', `/hosts/${id}/drain`), {
    invalidate: [['hosts'], ['migrations']],
    success: t('hosts.drainStarted'),
  });
  const setMaintenance = useAction((v: { id: string; on: boolean }) => api('PATCH', `/hosts/${v.id}`, { maintenance: v.on }), {
    invalidate: [['hosts']],
    success: t('common.saved'),
  });
  const setEnabled = useAction((v: { id: string; on: boolean }) => api('POST', `/hosts/${v.id}/${v.on ? 'enable' : 'disable'}`), {
    invalidate: [['hosts']],
    success: t('common.saved'),
  });
  return (
    <>
      <PageTitle title={t('nav.hosts')} />
      <CursorTable<Host>
        queryKey={['hosts']}
        fetch={() => get<Page<Host>>('/hosts')}
        refetchInterval={5000}
        rowKey="id"
        filterText={(h) => `${h.name} ${h.zone} ${h.state}`}
        emptyText={t('hosts.empty')}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          {
            title: t('hosts.state'),
            render: (_, h) => (
              <Space size={4} wrap>
                <Tag color={stateColor[h.state]}>{t(`states.${h.state}`)}</Tag>
                {h.enabled ? null : <Tag color="orange">{t('hosts.disabled')}</Tag>}
                {h.maintenance ? <Tag color="purple">{t('hosts.maintenance')}</Tag> : null}
                {h.power?.standby ? <Tag color="cyan">{t('hosts.standby')}</Tag> : null}
              </Space>
            ),
          },
          { title: t('hosts.zone'), dataIndex: 'zone', responsive: ['md'] },
          { title: t('hosts.accelerator'), render: (_, h) => `${h.driver} / ${h.accelerator}`, responsive: ['md'] },
          { title: t('hosts.vcpus'), render: (_, h) => <Bar used={h.allocated.vcpus} total={Math.floor(h.vcpus * (h.overcommit?.cpu ?? 4))} label={t('hosts.vcpus')} /> },
          { title: t('hosts.memory'), render: (_, h) => <Bar used={h.allocated.memoryMiB} total={Math.floor(h.memoryMiB * (h.overcommit?.ram ?? 1))} label={t('hosts.memory')} /> },
          { title: t('hosts.disk'), render: (_, h) => <Bar used={h.allocated.diskGiB} total={Math.floor(h.diskGiB * (h.overcommit?.disk ?? 1))} label={t('hosts.disk')} /> },
          { title: t('hosts.instances'), render: (_, h) => h.allocated.instances },
          { title: t('nav.aggregates'), render: (_, h) => (h.aggregates ?? []).join(', ') || '-', responsive: ['lg'] },
          { title: t('hosts.power'), render: (_, h) => (h.power ? `${h.power.idleWatts}–${h.power.peakWatts} W` : '-'), responsive: ['xl'] },
          { title: t('hosts.heartbeat'), dataIndex: 'lastHeartbeatAt', render: formatTime, responsive: ['lg'] },
          {
            title: t('common.actions'),
            render: (_, h) => (
              <Space size={4} wrap>
                <Popconfirm title={t('hosts.confirmDrain', { name: h.name })} onConfirm={() => drain.mutate(h.id)} okText={t('common.yes')} cancelText={t('common.no')}>
                  <Button size="small" disabled={h.state !== 'up'}>
                    {t('hosts.drain')}
                  </Button>
                </Popconfirm>
                <Button size="small" onClick={() => setMaintenance.mutate({ id: h.id, on: !h.maintenance })}>
                  {h.maintenance ? t('hosts.endMaintenance') : t('hosts.startMaintenance')}
                </Button>
                {h.enabled ? (
                <Popconfirm title={t('hosts.confirmDisable', { name: h.name })} onConfirm={() => setEnabled.mutate({ id: h.id, on: false })} okText={t('common.yes')} cancelText={t('common.no')}>
                  <Button size="small">{t('hosts.disable')}</Button>
                </Popconfirm>
              ) : (
                <Button size="small" onClick={() => setEnabled.mutate({ id: h.id, on: true })}>
                  {t('hosts.enable')}
                </Button>
              )}
              </Space>
            ),
          },
        ]}
      />
    </>
  );
}
