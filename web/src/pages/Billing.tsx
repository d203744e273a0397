import { InfoCircleOutlined } from '@ant-design/icons';
import { useQuery } from '@tanstack/react-query';
import { Card, Col, Empty, Row, Skeleton, Statistic, Table, Tag, Tooltip, Typography } from 'antd';
import { useMemo } from 'react';
import { useTranslation } from 'react-i18next';
import { type BillingAccount, type BillingSpend, get, qs, type Showback, type ShowbackItem } from '../api';
import { useAuth } from '../auth';
import { Chart } from '../chart';
import { formatTime, PageTitle, QueryError } from '../components';

// ---- Money: integer micro-units, formatted with BigInt (never through a float) -------------------

const MICROS = 1_000_000n;
/** Currencies without minor units; every other one is shown with at least 2 decimals. */
const ZERO_DECIMALS = new Set(['JPY', 'KRW', 'VND', 'CLP', 'ISK', 'UGX', 'XAF', 'XOF']);

const toBig = (v: number | string | bigint) => (typeof v === 'bigint' ? v : BigInt(v));

/** Micro-units as an exact decimal string: 1234567 → "1.234567", 1230000 → "1.23" (CNY), grouped. */
export function formatMicros(micros: number | string | bigint, currency?: string): string {
  const m = toBig(micros);
  const neg = m < 0n;
  const abs = neg ? -m : m;
  const whole = (abs / MICROS).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  let frac = (abs % MICROS).toString().padStart(6, '0').replace(/0+$/, '');
  const min = currency && ZERO_DECIMALS.has(currency) ? 0 : 2;
  if (frac.length < min) frac = frac.padEnd(min, '0');
  return `${neg ? '-' : ''}${whole}${frac ? `.${frac}` : ''}`;
}

/** An amount with its currency code: "12.50 CNY". */
export const money = (micros: number | string | bigint, currency: string) => `${formatMicros(micros, currency)} ${currency}`;

/** A decimal string with at most 6 decimals ("12.5") → micro-units, exactly; null if malformed. */
export function parseDecimalMicros(s: string): bigint | null {
  const m = /^\s*(\d+)(?:\.(\d{1,6}))?\s*$/.exec(s);
  if (!m) return null;
  return BigInt(m[1]!) * MICROS + BigInt((m[2] ?? '').padEnd(6, '0'));
}

/** `compute` → its name in the current language. */
export const serviceLabel = (t: (k: string, o?: Record<string, unknown>) => string, s: string) =>
  t(`billing.services.${s}`, { defaultValue: s });

/** Showback rows → sorted time buckets and one series per key (amounts summed in BigInt). */
export function showbackSeries(items: ShowbackItem[]) {
  const times = [...new Set(items.map((i) => i.time))].sort();
  const by = new Map<string, Map<string, bigint>>();
  for (const i of items) {
    const m = by.get(i.key) ?? new Map<string, bigint>();
    m.set(i.time, (m.get(i.time) ?? 0n) + BigInt(i.amountMicros));
    by.set(i.key, m);
  }
  const totals = [...by].map(([key, m]) => ({ key, total: [...m.values()].reduce((a, b) => a + b, 0n), points: m }));
  totals.sort((a, b) => (b.total > a.total ? 1 : b.total < a.total ? -1 : a.key.localeCompare(b.key)));
  return { times, series: totals };
}

/** A stacked bar chart of showback series, amounts in currency units, tooltips exact. */
export function ShowbackChart({
  items,
  currency,
  label,
  timeFormat,
}: {
  items: ShowbackItem[];
  currency: string;
  label: (key: string) => string;
  timeFormat: (iso: string) => string;
}) {
  const { times, series } = useMemo(() => showbackSeries(items), [items]);
  return (
    <Chart
      style={{ height: 300 }}
      option={{
        tooltip: {
          trigger: 'axis',
          valueFormatter: (v: number) => `${v} ${currency}`,
        },
        grid: { left: 64, right: 16, top: 16, bottom: 32 },
        xAxis: { type: 'category', data: times.map(timeFormat) },
        yAxis: { type: 'value', name: currency },
        series: series.map((s) => ({
          type: 'bar',
          stack: 'total',
          name: label(s.key),
          data: times.map((x) => Number(formatMicros(s.points.get(x) ?? 0n).replace(/,/g, ''))),
        })),
      }}
    />
  );
}

const monthStartUtc = (d = new Date()) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));

/** The tenant's costs: spend this month, per service over time, a forecast, balance and credits. */
export function BillingPage() {
  const { t } = useTranslation();
  const spend = useQuery({ queryKey: ['billing', 'spend'], queryFn: () => get<BillingSpend>('/billing/spend') });
  const account = useQuery({ queryKey: ['billing', 'account'], queryFn: () => get<BillingAccount>('/billing/account') });
  const { me } = useAuth();
  const since = useMemo(() => monthStartUtc().toISOString(), []);
  // The signed-in tenant's own spend (a platform admin would otherwise get every tenant's).
  const tenantId = me?.tenant.id;
  const daily = useQuery({
    queryKey: ['billing', 'showback', 'service', since, tenantId],
    queryFn: () => get<Showback>(`/billing/showback${qs({ groupBy: 'service', bucket: 'day', since, tenantId })}`),
  });
  const s = spend.data;
  const forecast = useMemo(() => {
    if (!s) return null;
    const start = Date.parse(s.periodStart);
    const end = Date.parse(s.periodEnd);
    const elapsed = Math.min(Date.now(), end) - start;
    if (elapsed <= 0) return null;
    // Linear: the month so far, scaled to the whole month (integer arithmetic, rounded down).
    return (BigInt(s.totalMicros) * BigInt(end - start)) / BigInt(elapsed);
  }, [s]);
  const a = account.data;
  const cur = s?.currency ?? a?.currency ?? '';
  return (
    <>
      <PageTitle title={t('nav.costs')} />
      <QueryError error={spend.error ?? account.error ?? daily.error} />
      {spend.isLoading ? (
        <Skeleton active />
      ) : s ? (
        <>
          <Row gutter={[16, 16]}>
            <Col xs={24} md={8}>
              <Card>
                <Statistic title={t('billing.spendToDate')} value={money(s.totalMicros, s.currency)} />
                <Typography.Text type="secondary">
                  {t('billing.period', { start: s.periodStart.slice(0, 10), end: s.periodEnd.slice(0, 10) })}
                </Typography.Text>
              </Card>
            </Col>
            <Col xs={24} md={8}>
              <Card>
                <Statistic
                  title={
                    <Tooltip title={t('billing.forecastHint')}>
                      <span>
                        {t('billing.forecast')} <InfoCircleOutlined aria-label={t('billing.forecastHint')} />
                      </span>
                    </Tooltip>
                  }
                  value={forecast === null ? '-' : money(forecast, s.currency)}
                />
                <Typography.Text type="secondary">
                  {t('billing.ratedThrough', { time: formatTime(s.ratedThrough) })}
                </Typography.Text>
              </Card>
            </Col>
            <Col xs={24} md={8}>
              <Card>
                {a ? (
                  <>
                    <Statistic title={t('billing.available')} value={money(a.availableMicros, a.currency)} />
                    <Typography.Text type="secondary">
                      {t('billing.balanceCredit', {
                        balance: money(a.balanceMicros, a.currency),
                        credit: money(a.creditMicros, a.currency),
                      })}{' '}
                      <Tag>{t(`billing.mode.${a.mode}`, { defaultValue: a.mode })}</Tag>
                      {a.status !== 'ok' ? <Tag color="red">{t(`billing.status.${a.status}`, { defaultValue: a.status })}</Tag> : null}
                    </Typography.Text>
                  </>
                ) : (
                  <Skeleton active paragraph={false} />
                )}
              </Card>
            </Col>
          </Row>
          <Card title={t('billing.byServiceOverTime')} style={{ marginTop: 16 }}>
            {daily.isLoading ? (
              <Skeleton active />
            ) : (daily.data?.items ?? []).length === 0 ? (
              <Empty description={t('billing.noSpend')} />
            ) : (
              <ShowbackChart
                items={daily.data!.items}
                currency={cur}
                label={(k) => serviceLabel(t, k)}
                timeFormat={(iso) => iso.slice(5, 10)}
              />
            )}
          </Card>
          <Card title={t('billing.byService')} style={{ marginTop: 16 }}>
            <Table
              size="middle"
              rowKey="service"
              pagination={false}
              dataSource={s.byService}
              locale={{ emptyText: <Empty description={t('billing.noSpend')} /> }}
              columns={[
                { title: t('billing.service'), dataIndex: 'service', render: (v: string) => serviceLabel(t, v) },
                { title: t('billing.amount'), dataIndex: 'amountMicros', align: 'right', render: (v: number) => money(v, s.currency) },
              ]}
              summary={() => (
                <Table.Summary.Row>
                  <Table.Summary.Cell index={0}>
                    <b>{t('billing.total')}</b>
                  </Table.Summary.Cell>
                  <Table.Summary.Cell index={1} align="right">
                    <b>{money(s.totalMicros, s.currency)}</b>
                  </Table.Summary.Cell>
                </Table.Summary.Row>
              )}
            />
          </Card>
        </>
      ) : null}
    </>
  );
}
