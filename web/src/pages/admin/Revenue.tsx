import { useQuery } from '@tanstack/react-query';
import { Button, Card, Empty, Segmented, Skeleton, Space, Table } from 'antd';
import { useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { get, qs, type Showback } from '../../api';
import { PageTitle, QueryError } from '../../components';
import { money, serviceLabel, ShowbackChart, showbackSeries } from '../Billing';

const RANGES = { '30d': 30, '90d': 90, '365d': 365 } as const;

/** Showback for operators: revenue per tenant or service over time (chart and table). */
export function RevenuePage() {
  const { t } = useTranslation();
  const [groupBy, setGroupBy] = useState<'tenant' | 'service'>('tenant');
  const [range, setRange] = useState<keyof typeof RANGES>('30d');
  const bucket = range === '30d' ? 'day' : 'month';
  const since = useMemo(() => new Date(Date.now() - RANGES[range] * 86_400_000).toISOString(), [range]);
  const q = useQuery({
    queryKey: ['billing', 'showback', groupBy, bucket, since],
    queryFn: () => get<Showback>(`/billing/showback${qs({ groupBy, bucket, since })}`),
  });
  const items = q.data?.items ?? [];
  const currency = q.data?.currency ?? '';
  const { series } = useMemo(() => showbackSeries(items), [items]);
  const grand = series.reduce((a, s) => a + s.total, 0n);
  const label = (k: string) => (groupBy === 'service' ? serviceLabel(t, k) : k);
  return (
    <>
      <PageTitle
        title={t('nav.revenue')}
        extra={
          <>
            <Segmented
              aria-label={t('revenue.groupBy')}
              value={groupBy}
              onChange={(v) => setGroupBy(v as 'tenant' | 'service')}
              options={[
                { value: 'tenant', label: t('revenue.perTenant') },
                { value: 'service', label: t('revenue.perService') },
              ]}
            />
            <Segmented
              aria-label={t('usage.range')}
              value={range}
              onChange={(v) => setRange(v as keyof typeof RANGES)}
              options={[
                { value: '30d', label: t('usage.last30d') },
                { value: '90d', label: t('revenue.last90d') },
                { value: '365d', label: t('revenue.last365d') },
              ]}
            />
            <Button onClick={() => q.refetch()} loading={q.isFetching}>
              {t('common.refresh')}
            </Button>
          </>
        }
      />
      <QueryError error={q.error} />
      {q.isLoading ? (
        <Skeleton active />
      ) : items.length === 0 ? (
        <Empty description={t('revenue.none')} />
      ) : (
        <Space direction="vertical" size={16} style={{ width: '100%' }}>
          <Card title={bucket === 'day' ? t('revenue.perDay') : t('revenue.perMonth')}>
            <ShowbackChart
              items={items}
              currency={currency}
              label={label}
              timeFormat={(iso) => (bucket === 'day' ? iso.slice(5, 10) : iso.slice(0, 7))}
            />
          </Card>
          <Card title={t('revenue.totals')}>
            <Table
              size="middle"
              rowKey="key"
              pagination={false}
              dataSource={series}
              columns={[
                {
                  title: groupBy === 'tenant' ? t('invoices.tenant') : t('billing.service'),
                  dataIndex: 'key',
                  render: (k: string) => (groupBy === 'service' ? serviceLabel(t, k) : k),
                },
                { title: t('billing.amount'), align: 'right', render: (_, s) => money(s.total, currency) },
                {
                  title: t('revenue.share'),
                  align: 'right',
                  // Per-mille in BigInt, shown with one decimal.
                  render: (_, s) => {
                    const pm = grand > 0n ? (s.total * 1000n) / grand : 0n;
                    return `${pm / 10n}.${pm % 10n}%`;
                  },
                },
              ]}
              summary={() => (
                <Table.Summary.Row>
                  <Table.Summary.Cell index={0}>
                    <b>{t('billing.total')}</b>
                  </Table.Summary.Cell>
                  <Table.Summary.Cell index={1} align="right">
                    <b>{money(grand, currency)}</b>
                  </Table.Summary.Cell>
                  <Table.Summary.Cell index={2} />
                </Table.Summary.Row>
              )}
            />
          </Card>
        </Space>
      )}
    </>
  );
}
