import { useQuery } from '@tanstack/react-query';
import { Card, Col, Empty, Row, Segmented, Skeleton, Space } from 'antd';
import { Chart } from '../chart';
import { useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { get, type Page, qs, type UsageRecord } from '../api';
import { PageTitle, QueryError } from '../components';

/** `compute.instance-seconds:tiny.small` → the meter `compute.instance-seconds` and its detail `tiny.small`. */
export const meterBase = (meter: string) => meter.split(':')[0]!;

/** A meter's name in the current language, with its detail (a flavor, say) after it. */
export function meterLabel(t: (k: string, o?: Record<string, unknown>) => string, meter: string): string {
  const [base, ...detail] = meter.split(':');
  const name = t(`meters.${base}`, { defaultValue: base });
  return detail.length ? `${name} (${detail.join(':')})` : name;
}

/** Meter totals in display units: seconds become hours, bytes GiB (byte-seconds GiB-hours). */
export function meterValue(fullMeter: string, q: number): number {
  const meter = meterBase(fullMeter);
  if (meter.endsWith('byte-seconds')) return q / 1024 ** 3 / 3600;
  if (meter.endsWith('-seconds')) return q / 3600;
  if (meter.endsWith('-bytes')) return q / 1024 ** 3;
  return q;
}

const RANGES = { '24h': 24 * 3600e3, '7d': 7 * 24 * 3600e3, '30d': 30 * 24 * 3600e3 } as const;

export function UsagePage() {
  const { t } = useTranslation();
  const [range, setRange] = useState<keyof typeof RANGES>('7d');
  const since = useMemo(() => new Date(Date.now() - RANGES[range]).toISOString(), [range]);
  const q = useQuery({
    queryKey: ['usage', 'records', range],
    queryFn: async () => {
      // Every page up to a bound: the chart sums what the ledger holds for the range.
      const all: UsageRecord[] = [];
      let cursor: string | undefined;
      for (let i = 0; i < 20; i++) {
        const p = await get<Page<UsageRecord>>(`/usage${qs({ since, limit: 1000, cursor })}`);
        all.push(...p.items);
        if (!p.nextCursor) break;
        cursor = p.nextCursor;
      }
      return all;
    },
  });
  const bucketMs = range === '24h' ? 3600e3 : 24 * 3600e3;
  const series = useMemo(() => {
    const by = new Map<string, Map<number, number>>();
    for (const r of q.data ?? []) {
      const b = Math.floor(Date.parse(r.periodEnd) / bucketMs) * bucketMs;
      const m = by.get(r.meter) ?? new Map<number, number>();
      m.set(b, (m.get(b) ?? 0) + r.quantity);
      by.set(r.meter, m);
    }
    return [...by.entries()].sort(([a], [b]) => a.localeCompare(b));
  }, [q.data, bucketMs]);
  const fmt = (ms: number) =>
    range === '24h' ? new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : new Date(ms).toLocaleDateString();
  return (
    <>
      <PageTitle
        title={t('nav.usage')}
        extra={
          <Space>
            <Segmented
              aria-label={t('usage.range')}
              value={range}
              onChange={(v) => setRange(v as keyof typeof RANGES)}
              options={[
                { value: '24h', label: t('usage.last24h') },
                { value: '7d', label: t('usage.last7d') },
                { value: '30d', label: t('usage.last30d') },
              ]}
            />
          </Space>
        }
      />
      <QueryError error={q.error} />
      {q.isLoading ? (
        <Skeleton active />
      ) : series.length === 0 ? (
        <Empty description={t('usage.none')} />
      ) : (
        <Row gutter={[16, 16]}>
          {series.map(([meter, points]) => {
            const xs = [...points.keys()].sort((a, b) => a - b);
            return (
              <Col xs={24} lg={12} key={meter}>
                <Card title={meterLabel(t, meter)}>
                  <Chart
                    style={{ height: 240 }}
                    option={{
                      tooltip: { trigger: 'axis' },
                      grid: { left: 56, right: 16, top: 16, bottom: 32 },
                      xAxis: { type: 'category', data: xs.map(fmt) },
                      yAxis: { type: 'value' },
                      series: [
                        {
                          type: 'bar',
                          name: meterLabel(t, meter),
                          data: xs.map((x) => Number(meterValue(meter, points.get(x)!).toFixed(4))),
                        },
                      ],
                    }}
                  />
                </Card>
              </Col>
            );
          })}
        </Row>
      )}
    </>
  );
}
