import { Progress, Space, Tag, Tooltip, Typography } from 'antd';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router-dom';
import { get, type Zone } from '../../api';
import { CursorTable, PageTitle, pageOf } from '../../components';

function Alloc({ used, total, label, unit }: { used: number; total: number; label: string; unit?: string }) {
  const pct = total > 0 ? Math.round((used / total) * 100) : 0;
  return (
    <Tooltip title={label}>
      <Progress
        percent={Math.min(100, pct)}
        size="small"
        status={pct >= 90 ? 'exception' : 'normal'}
        format={() => `${used}/${total}${unit ? ` ${unit}` : ''}`}
        style={{ minWidth: 160 }}
        aria-label={label}
      />
    </Tooltip>
  );
}

/** Availability zones (platform admins): hosts per zone, capacity and what is allocated. */
export function ZonesPage() {
  const { t } = useTranslation();
  return (
    <>
      <PageTitle title={t('nav.zones')} />
      <Typography.Paragraph type="secondary">{t('zones.intro')}</Typography.Paragraph>
      <CursorTable<Zone>
        queryKey={['zones']}
        fetch={async (cursor, limit) => pageOf((await get<{ items: Zone[] }>('/availability-zones')).items, cursor, limit)}
        refetchInterval={10_000}
        rowKey="name"
        filterText={(z) => `${z.name} ${z.hostNames.join(' ')}`}
        emptyText={t('zones.empty')}
        columns={[
          { title: t('zones.zone'), dataIndex: 'name', render: (n: string) => <b data-testid={`zone-${n}`}>{n}</b> },
          {
            title: t('zones.hosts'),
            render: (_, z) => (
              <Space direction="vertical" size={2}>
                <span>{t('zones.hostCounts', { total: z.hosts, up: z.hostsUp, enabled: z.hostsEnabled })}</span>
                {z.hostsInMaintenance ? <Tag color="orange">{t('zones.inMaintenance', { n: z.hostsInMaintenance })}</Tag> : null}
              </Space>
            ),
          },
          {
            title: t('zones.hostNames'),
            render: (_, z) => (
              <Space size={4} wrap>
                {z.hostNames.map((h) => (
                  <Link key={h} to="/admin/hosts">
                    <Tag>{h}</Tag>
                  </Link>
                ))}
              </Space>
            ),
          },
          { title: t('instances.vcpus'), render: (_, z) => <Alloc used={z.allocated.vcpus} total={z.capacity.vcpus} label={t('instances.vcpus')} /> },
          {
            title: t('zones.memory'),
            render: (_, z) => <Alloc used={Number((z.allocated.memoryMiB / 1024).toFixed(1))} total={Number((z.capacity.memoryMiB / 1024).toFixed(1))} unit="GiB" label={t('zones.memory')} />,
          },
          { title: t('zones.disk'), render: (_, z) => <Alloc used={z.allocated.diskGiB} total={z.capacity.diskGiB} unit="GiB" label={t('zones.disk')} /> },
          { title: t('hosts.instances'), render: (_, z) => z.allocated.instances },
        ]}
      />
    </>
  );
}
