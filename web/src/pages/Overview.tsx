import { useQuery } from '@tanstack/react-query';
import { Card, Col, Empty, Row, Skeleton, Statistic } from 'antd';
import { Chart } from '../chart';
import { useTranslation } from 'react-i18next';
import { Link } from 'react-router-dom';
import { type Bucket, get, type Image, type Instance, type Page, type Quota, type Queue } from '../api';
import { PageTitle, QueryError, UsageBar } from '../components';
import { meterLabel, meterValue } from './Usage';

export function OverviewPage() {
  const { t } = useTranslation();
  const instances = useQuery({ queryKey: ['instances', 'count'], queryFn: () => get<Page<Instance>>('/instances?limit=1000') });
  const buckets = useQuery({ queryKey: ['buckets', 'count'], queryFn: () => get<Page<Bucket>>('/buckets?limit=1000') });
  const queues = useQuery({ queryKey: ['queues', 'count'], queryFn: () => get<Page<Queue>>('/queues') });
  const images = useQuery({ queryKey: ['images', 'count'], queryFn: () => get<Page<Image>>('/images?limit=1000') });
  const quotas = useQuery({ queryKey: ['quotas'], queryFn: () => get<{ items: Quota[] }>('/quotas') });
  const summary = useQuery({
    queryKey: ['usage', 'summary'],
    queryFn: () => get<{ since: string; until: string; meters: { meter: string; total: number }[] }>('/usage/summary'),
  });
  const running = instances.data?.items.filter((i) => i.state === 'running').length ?? 0;
  const stat = (title: string, value: number | undefined, to: string, loading: boolean, note?: string) => (
    <Col xs={12} md={6}>
      <Card>
        <Link to={to}>
          <Statistic
            title={title}
            value={value ?? 0}
            loading={loading}
            suffix={note ? <span style={{ fontSize: 14, color: '#888' }}>{note}</span> : undefined}
          />
        </Link>
      </Card>
    </Col>
  );
  const meters = summary.data?.meters ?? [];
  return (
    <>
      <PageTitle title={t('nav.overview')} />
      <QueryError error={instances.error ?? buckets.error ?? queues.error ?? quotas.error} />
      <Row gutter={[16, 16]}>
        {stat(t('overview.instances'), instances.data?.items.length, '/instances', instances.isLoading, instances.data ? `(${running} ${t('overview.running')})` : undefined)}
        {stat(t('overview.buckets'), buckets.data?.items.length, '/buckets', buckets.isLoading)}
        {stat(t('overview.queues'), queues.data?.items.length, '/queues', queues.isLoading)}
        {stat(t('overview.images'), images.data?.items.length, '/images', images.isLoading)}
      </Row>
      <Row gutter={[16, 16]} style={{ marginTop: 16 }}>
        <Col xs={24} lg={12}>
          <Card title={t('overview.quotas')}>
            {quotas.isLoading ? (
              <Skeleton active />
            ) : (
              (quotas.data?.items ?? [])
                .filter((q) => ['instances', 'vcpus', 'memoryMiB', 'buckets', 'queues', 'storageBytes', 'accessKeys', 'users'].includes(q.resource))
                .map((q) => (
                  <div key={q.resource} style={{ marginBottom: 8 }}>
                    <div>{t(`quotas.${q.resource}`)}</div>
                    <UsageBar used={q.used} limit={q.limit} resource={q.resource} label={t(`quotas.${q.resource}`)} />
                  </div>
                ))
            )}
          </Card>
        </Col>
        <Col xs={24} lg={12}>
          <Card title={t('overview.usageSoFar')}>
            {summary.isLoading ? (
              <Skeleton active />
            ) : meters.length === 0 ? (
              <Empty description={t('usage.none')} />
            ) : (
              <Chart
                style={{ height: 320 }}
                option={{
                  tooltip: { trigger: 'axis' },
                  grid: { left: 160, right: 24, top: 8, bottom: 24 },
                  xAxis: { type: 'value' },
                  yAxis: { type: 'category', data: meters.map((m) => meterLabel(t, m.meter)) },
                  series: [{ type: 'bar', data: meters.map((m) => Number(meterValue(m.meter, m.total).toFixed(3))) }],
                }}
              />
            )}
          </Card>
        </Col>
      </Row>
    </>
  );
}
