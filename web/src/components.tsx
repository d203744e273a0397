import { type QueryKey, useMutation, useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, App as AntApp, Button, Empty, Input, Progress, Result, Space, Table, Tooltip, Typography } from 'antd';
import type { ColumnsType } from 'antd/es/table';
import { type ReactNode, useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { useNavigate } from 'react-router-dom';
import { ApiError, type Page } from './api';

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export const formatTime = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : '-');

export const errorText = (e: unknown) =>
  e instanceof ApiError ? `${e.message} (${e.code})` : e instanceof Error ? e.message : String(e);

/** Runs an API action with feedback: a success toast, or the API's error message. */
export function useAction<V, R = unknown>(
  fn: (v: V) => Promise<R>,
  opts: { success?: string | ((r: R) => string); invalidate?: QueryKey[]; onSuccess?: (r: R, v: V) => void } = {},
) {
  const qc = useQueryClient();
  const { message } = AntApp.useApp();
  return useMutation({
    mutationFn: fn,
    onSuccess: async (r, v) => {
      if (opts.success) message.success(typeof opts.success === 'function' ? opts.success(r) : opts.success);
      for (const k of opts.invalidate ?? []) await qc.invalidateQueries({ queryKey: k });
      opts.onSuccess?.(r, v);
    },
    onError: (e) => {
      message.error(errorText(e), 6);
    },
  });
}

export function QueryError({ error }: { error: unknown }) {
  if (!error) return null;
  return <Alert type="error" showIcon message={errorText(error)} style={{ marginBottom: 12 }} />;
}

export function PageTitle({ title, extra }: { title: string; extra?: ReactNode }) {
  return (
    <div style={{ display: 'flex', alignItems: 'center', flexWrap: 'wrap', gap: 8, marginBottom: 16 }}>
      <Typography.Title level={3} style={{ margin: 0, flex: 1 }}>
        {title}
      </Typography.Title>
      {extra ? <Space wrap>{extra}</Space> : null}
    </div>
  );
}

export function UsageBar({
  used,
  limit,
  label,
  resource,
}: { used: number; limit: number; label?: string; resource?: string }) {
  const show = (n: number) => (resource === 'storageBytes' ? formatBytes(n) : String(n));
  const { t } = useTranslation();
  const pct = limit > 0 ? Math.min(100, Math.round((used / limit) * 100)) : 0;
  return (
    <Tooltip title={label}>
      <div>
        <Progress
          percent={limit < 0 ? 0 : pct}
          status={limit >= 0 && pct >= 90 ? 'exception' : 'normal'}
          format={() => (limit < 0 ? `${show(used)} / ${t('common.unlimited')}` : `${show(used)} / ${show(limit)}`)}
          aria-label={label}
        />
      </div>
    </Tooltip>
  );
}

/**
 * A list read page by page from a cursor-paginated API (`?limit=&cursor=` → `{items, nextCursor}`),
 * with a text filter over the rows shown and Prev/Next buttons.
 */
export function CursorTable<T extends object>(props: {
  queryKey: QueryKey;
  fetch: (cursor: string | undefined, limit: number) => Promise<Page<T>>;
  columns: ColumnsType<T>;
  rowKey: keyof T | ((r: T) => string);
  /** Text the filter box matches against. */
  filterText?: (r: T) => string;
  refetchInterval?: number | false;
  pageSize?: number;
  toolbar?: ReactNode;
  emptyText?: string;
}) {
  const { t } = useTranslation();
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [filter, setFilter] = useState('');
  const pageSize = props.pageSize ?? 20;
  const cursor = cursors[cursors.length - 1];
  const q = useQuery({
    queryKey: [...props.queryKey, 'page', cursor ?? '', pageSize],
    queryFn: () => props.fetch(cursor, pageSize),
    refetchInterval: props.refetchInterval,
  });
  const rows = useMemo(() => {
    const items = q.data?.items ?? [];
    if (!filter || !props.filterText) return items;
    const f = filter.toLowerCase();
    return items.filter((r) => props.filterText!(r).toLowerCase().includes(f));
  }, [q.data, filter, props.filterText]);
  return (
    <>
      <QueryError error={q.error} />
      <Space wrap style={{ marginBottom: 12 }}>
        {props.filterText ? (
          <Input.Search
            allowClear
            placeholder={t('common.filter')}
            aria-label={t('common.filter')}
            value={filter}
            onChange={(e) => setFilter(e.target.value)}
            style={{ width: 240 }}
          />
        ) : null}
        {props.toolbar}
        <Button onClick={() => q.refetch()} loading={q.isFetching}>
          {t('common.refresh')}
        </Button>
      </Space>
      <Table<T>
        size="middle"
        scroll={{ x: 'max-content' }}
        loading={q.isLoading}
        columns={props.columns}
        dataSource={rows}
        rowKey={props.rowKey as never}
        pagination={false}
        locale={{ emptyText: <Empty description={props.emptyText ?? t('common.empty')} /> }}
      />
      <Space style={{ marginTop: 12 }}>
        <Button disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          {t('common.prev')}
        </Button>
        <Typography.Text type="secondary">{t('common.pageN', { n: cursors.length })}</Typography.Text>
        <Button
          disabled={!q.data?.nextCursor}
          onClick={() => setCursors((c) => [...c, q.data!.nextCursor!])}
        >
          {t('common.next')}
        </Button>
      </Space>
    </>
  );
}

export function Forbidden() {
  const { t } = useTranslation();
  const nav = useNavigate();
  return (
    <Result
      status="403"
      title="403"
      subTitle={t('errors.forbidden')}
      extra={
        <Button type="primary" onClick={() => nav('/')}>
          {t('common.backHome')}
        </Button>
      }
    />
  );
}

export function NotFoundPage() {
  const { t } = useTranslation();
  const nav = useNavigate();
  return (
    <Result
      status="404"
      title="404"
      subTitle={t('errors.notFound')}
      extra={
        <Button type="primary" onClick={() => nav('/')}>
          {t('common.backHome')}
        </Button>
      }
    />
  );
}

export const stateColor: Record<string, string> = {
  running: 'green',
  building: 'blue',
  starting: 'blue',
  stopping: 'orange',
  stopped: 'default',
  rebooting: 'blue',
  resizing: 'purple',
  deleting: 'red',
  error: 'red',
  available: 'green',
  importing: 'blue',
  active: 'green',
  suspended: 'red',
  up: 'green',
  down: 'red',
  success: 'green',
  failure: 'red',
  denied: 'orange',
  Active: 'green',
  Inactive: 'default',
};

/**
 * One page of a list the API answers whole (`{items}`): the cursor is the offset, so such lists
 * page with the same Prev/Next controls as cursor-paginated ones.
 */
export function pageOf<T>(items: T[], cursor: string | undefined, limit: number): Page<T> {
  const from = cursor ? Number(cursor) || 0 : 0;
  const to = from + limit;
  return { items: items.slice(from, to), nextCursor: to < items.length ? String(to) : null };
}
