import { BellOutlined, PlusOutlined } from '@ant-design/icons';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { Alert, Button, Form, Input, Modal, Popconfirm, Progress, Radio, Select, Space, Tag, Tooltip, Typography } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, type BillingAccount, type BillingNotification, type Budget, get, type Page, type Queue, qs } from '../api';
import { useAuth } from '../auth';
import { CursorTable, formatTime, PageTitle, pageOf, useAction } from '../components';
import { formatMicros, money, parseDecimalMicros } from './Billing';

const DEFAULT_THRESHOLDS = [50, 80, 100];

/** Percent of the budget spent, from micro-units (integers; capped for the bar). */
const spentPercent = (b: Pick<Budget, 'spentMicros' | 'amountMicros'>) =>
  b.amountMicros > 0 ? Number((BigInt(b.spentMicros) * 1000n) / BigInt(b.amountMicros)) / 10 : 0;

interface BudgetForm {
  name: string;
  amount: string;
  thresholds: (string | number)[];
  target: 'none' | 'queue' | 'webhook';
  queueName?: string;
  webhookUrl?: string;
}

const bodyOf = (v: BudgetForm) => ({
  name: v.name,
  amount: v.amount.trim(),
  thresholds: [...new Set(v.thresholds.map(Number))].sort((a, b) => a - b),
  ...(v.target === 'queue' && v.queueName ? { queueName: v.queueName } : {}),
  ...(v.target === 'webhook' && v.webhookUrl ? { webhookUrl: v.webhookUrl.trim() } : {}),
});

/**
 * Create or edit a budget. The API has no update: saving an edit deletes the budget and creates
 * it again with the new values (and puts the old one back if that fails).
 */
function BudgetModal({ budget, currency, onClose }: { budget: Budget | null; currency: string; onClose: () => void }) {
  const { t } = useTranslation();
  const [form] = Form.useForm<BudgetForm>();
  const target = Form.useWatch('target', form);
  const queues = useQuery({ queryKey: ['queues', 'all'], queryFn: () => get<Page<Queue>>('/queues?limit=1000') });
  const save = useAction(
    async (v: BudgetForm) => {
      const body = bodyOf(v);
      if (!budget) return api<Budget>('POST', '/billing/budgets', body);
      await api('DELETE', `/billing/budgets/${encodeURIComponent(budget.id)}`);
      try {
        return await api<Budget>('POST', '/billing/budgets', body);
      } catch (e) {
        await api('POST', '/billing/budgets', {
          name: budget.name,
          amount: formatMicros(budget.amountMicros).replace(/,/g, ''),
          thresholds: budget.thresholds,
          ...(budget.queueName ? { queueName: budget.queueName } : {}),
          ...(budget.webhookUrl ? { webhookUrl: budget.webhookUrl } : {}),
        }).catch(() => {});
        throw e;
      }
    },
    { invalidate: [['billing', 'budgets']], success: budget ? t('common.saved') : t('budgets.created'), onSuccess: onClose },
  );
  const initial: BudgetForm = budget
    ? {
        name: budget.name,
        amount: formatMicros(budget.amountMicros).replace(/,/g, ''),
        thresholds: budget.thresholds,
        target: budget.queueName ? 'queue' : budget.webhookUrl ? 'webhook' : 'none',
        queueName: budget.queueName ?? undefined,
        webhookUrl: budget.webhookUrl ?? undefined,
      }
    : { name: '', amount: '', thresholds: DEFAULT_THRESHOLDS, target: 'none' };
  return (
    <Modal
      open
      title={budget ? t('budgets.editTitle', { name: budget.name }) : t('budgets.create')}
      onCancel={onClose}
      onOk={() => form.submit()}
      okText={budget ? t('common.save') : t('common.create')}
      cancelText={t('common.cancel')}
      confirmLoading={save.isPending}
    >
      {budget ? <Alert type="info" showIcon message={t('budgets.editHint')} style={{ marginBottom: 12 }} /> : null}
      <Form form={form} layout="vertical" initialValues={initial} onFinish={(v) => save.mutate(v)}>
        <Form.Item
          label={t('common.name')}
          name="name"
          rules={[
            { required: true, message: t('validation.required') },
            { pattern: /^[A-Za-z0-9_.-]{1,64}$/, message: t('budgets.nameHint') },
          ]}
        >
          <Input autoComplete="off" />
        </Form.Item>
        <Form.Item
          label={t('budgets.amountIn', { currency })}
          name="amount"
          extra={t('budgets.period')}
          rules={[
            { required: true, message: t('validation.required') },
            {
              validator: async (_, v: string) => {
                const m = v ? parseDecimalMicros(v) : null;
                if (v && (m === null || m <= 0n)) throw new Error(t('budgets.badAmount'));
              },
            },
          ]}
        >
          <Input inputMode="decimal" placeholder="1000" autoComplete="off" />
        </Form.Item>
        <Form.Item
          label={t('budgets.thresholds')}
          name="thresholds"
          extra={t('budgets.thresholdsHint')}
          rules={[
            { required: true, message: t('validation.required') },
            {
              validator: async (_, v: (string | number)[]) => {
                if ((v ?? []).some((x) => !/^\d+$/.test(String(x)) || Number(x) < 1 || Number(x) > 1000))
                  throw new Error(t('budgets.badThreshold'));
                if ((v ?? []).length > 10) throw new Error(t('budgets.badThreshold'));
              },
            },
          ]}
        >
          <Select
            mode="tags"
            aria-label={t('budgets.thresholds')}
            tokenSeparators={[',', ' ']}
            options={[50, 80, 90, 100, 120].map((n) => ({ value: n, label: `${n}%` }))}
          />
        </Form.Item>
        <Form.Item label={t('budgets.notify')} name="target">
          <Radio.Group
            options={[
              { value: 'none', label: t('budgets.targets.none') },
              { value: 'queue', label: t('budgets.targets.queue') },
              { value: 'webhook', label: t('budgets.targets.webhook') },
            ]}
          />
        </Form.Item>
        {target === 'queue' ? (
          <Form.Item label={t('budgets.queue')} name="queueName" extra={t('budgets.queueHint')} rules={[{ required: true, message: t('validation.required') }]}>
            <Select
              showSearch
              loading={queues.isLoading}
              aria-label={t('budgets.queue')}
              notFoundContent={t('queues.empty')}
              options={(queues.data?.items ?? []).map((q) => ({ value: q.name, label: `${q.name} (${q.arn})` }))}
            />
          </Form.Item>
        ) : null}
        {target === 'webhook' ? (
          <Form.Item
            label={t('budgets.webhook')}
            name="webhookUrl"
            extra={t('budgets.webhookHint')}
            rules={[
              { required: true, message: t('validation.required') },
              { pattern: /^https?:\/\/\S+$/, message: t('budgets.badUrl') },
              { max: 2000 },
            ]}
          >
            <Input placeholder="https://example.com/hooks/budget" autoComplete="off" />
          </Form.Item>
        ) : null}
      </Form>
    </Modal>
  );
}

/** The tenant's monthly budgets: amount, spend so far, alert thresholds and where alerts go. */
export function BudgetsPage() {
  const { t } = useTranslation();
  const [editing, setEditing] = useState<Budget | null | undefined>(undefined);
  const account = useQuery({ queryKey: ['billing', 'account'], queryFn: () => get<BillingAccount>('/billing/account') });
  const currency = account.data?.currency ?? '';
  const del = useAction((id: string) => api('DELETE', `/billing/budgets/${encodeURIComponent(id)}`), {
    invalidate: [['billing', 'budgets']],
    success: t('common.deleted'),
  });
  return (
    <>
      <PageTitle
        title={t('nav.budgets')}
        extra={
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setEditing(null)}>
            {t('budgets.create')}
          </Button>
        }
      />
      <Typography.Paragraph type="secondary">{t('budgets.intro')}</Typography.Paragraph>
      <CursorTable<Budget>
        queryKey={['billing', 'budgets']}
        fetch={async (cursor, limit) => pageOf((await get<{ items: Budget[] }>('/billing/budgets')).items, cursor, limit)}
        rowKey="id"
        filterText={(b) => `${b.name} ${b.queueName ?? ''} ${b.webhookUrl ?? ''}`}
        emptyText={t('budgets.empty')}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('budgets.amount'), dataIndex: 'amountMicros', align: 'right', render: (v: number) => money(v, currency) },
          {
            title: t('budgets.spent'),
            render: (_, b) => {
              const pct = spentPercent(b);
              return (
                <div style={{ minWidth: 180 }}>
                  <Progress percent={Math.min(100, pct)} status={pct >= 100 ? 'exception' : 'normal'} format={() => `${pct}%`} size="small" />
                  <Typography.Text type="secondary">{money(b.spentMicros, currency)}</Typography.Text>
                </div>
              );
            },
          },
          {
            title: t('budgets.thresholds'),
            render: (_, b) => (
              <Space size={4} wrap>
                {b.thresholds.map((th) => (
                  <Tag key={th} color={spentPercent(b) >= th ? 'red' : 'default'}>
                    {th}%
                  </Tag>
                ))}
              </Space>
            ),
          },
          {
            title: t('budgets.notify'),
            render: (_, b) =>
              b.queueName ? (
                <Tag color="blue">{t('budgets.targets.queue')}: {b.queueName}</Tag>
              ) : b.webhookUrl ? (
                <Tooltip title={b.webhookUrl}>
                  <Tag color="purple">{t('budgets.targets.webhook')}: {b.webhookUrl.replace(/^https?:\/\//, '').slice(0, 32)}</Tag>
                </Tooltip>
              ) : (
                <Tag>{t('budgets.targets.none')}</Tag>
              ),
          },
          { title: t('budgets.periodShort'), render: () => t('budgets.monthly'), responsive: ['md'] },
          { title: t('common.created'), dataIndex: 'createdAt', render: formatTime, responsive: ['lg'] },
          {
            title: t('common.actions'),
            render: (_, b) => (
              <Space size="small">
                <Button size="small" onClick={() => setEditing(b)}>
                  {t('common.edit')}
                </Button>
                <Popconfirm
                  title={t('budgets.confirmDelete', { name: b.name })}
                  onConfirm={() => del.mutate(b.id)}
                  okText={t('common.delete')}
                  okButtonProps={{ danger: true }}
                  cancelText={t('common.cancel')}
                >
                  <Button size="small" danger>
                    {t('common.delete')}
                  </Button>
                </Popconfirm>
              </Space>
            ),
          },
        ]}
      />
      {editing !== undefined ? <BudgetModal budget={editing} currency={currency} onClose={() => setEditing(undefined)} /> : null}
    </>
  );
}

// ---- billing notifications ---------------------------------------------------------------

const SEEN = 'yunhai.billingNotificationsSeen';
const seenKey = (userId: string) => `${SEEN}.${userId}`;

export const notificationsQuery = {
  queryKey: ['billing', 'notifications'],
  queryFn: () => get<{ items: BillingNotification[] }>(`/billing/notifications${qs({ limit: 200 })}`),
};

/** Notifications newer than the last time this user opened the list (per browser). */
export function unseenCount(items: BillingNotification[], userId: string): number {
  const seen = localStorage.getItem(seenKey(userId)) ?? '';
  return items.filter((n) => n.createdAt > seen).length;
}

/** Fired when the list was opened, so the bell counts again (its data may not have changed). */
export const SEEN_EVENT = 'yunhai:billing-notifications-seen';

export function markSeen(items: BillingNotification[], userId: string) {
  const newest = items.map((n) => n.createdAt).sort().at(-1);
  if (newest && newest !== localStorage.getItem(seenKey(userId))) {
    localStorage.setItem(seenKey(userId), newest);
    window.dispatchEvent(new Event(SEEN_EVENT));
  }
}

const DELIVERY_COLOR: Record<string, string> = { delivered: 'green', pending: 'blue', failed: 'red', none: 'default' };

/** A notification in the current language (budget alerts from their details; others by kind). */
export function notificationText(t: (k: string, o?: Record<string, unknown>) => string, n: BillingNotification, currency: string) {
  const d = n.details as { budget?: string; threshold?: number; spentMicros?: number; amountMicros?: number; availableMicros?: number };
  if (n.kind === 'BudgetThreshold' && d.budget !== undefined)
    return t('notifications.budgetText', {
      budget: d.budget,
      threshold: d.threshold,
      spent: money(d.spentMicros ?? 0, currency),
      amount: money(d.amountMicros ?? 0, currency),
    });
  if (d.availableMicros !== undefined)
    return t('notifications.balanceText', { kind: t(`notifications.kinds.${n.kind}`, { defaultValue: n.kind }), available: money(d.availableMicros, currency) });
  return n.message;
}

/** Budget alerts and balance notices of the tenant, newest first, with their delivery state. */
export function NotificationsPage() {
  const { t } = useTranslation();
  const { me } = useAuth();
  const qc = useQueryClient();
  const userId = me?.user.id ?? '';
  const account = useQuery({ queryKey: ['billing', 'account'], queryFn: () => get<BillingAccount>('/billing/account') });
  const currency = account.data?.currency ?? '';
  return (
    <>
      <PageTitle title={t('nav.notifications')} />
      <CursorTable<BillingNotification>
        queryKey={['billing', 'notifications', 'page']}
        fetch={async (cursor, limit) => {
          const all = await notificationsQuery.queryFn();
          markSeen(all.items, userId);
          // The header's bell gets the newest list too (exact: not this page's own query).
          void qc.invalidateQueries({ queryKey: notificationsQuery.queryKey, exact: true });
          return pageOf(all.items, cursor, limit);
        }}
        refetchInterval={30_000}
        rowKey="id"
        filterText={(n) => `${n.kind} ${n.message} ${n.delivery} ${n.target.value ?? ''}`}
        emptyText={t('notifications.empty')}
        columns={[
          { title: t('notifications.time'), dataIndex: 'createdAt', render: formatTime },
          {
            title: t('notifications.kind'),
            dataIndex: 'kind',
            render: (k: string) => (
              <Tag icon={<BellOutlined />} color={k === 'BudgetThreshold' ? 'orange' : 'blue'}>
                {t(`notifications.kinds.${k}`, { defaultValue: k })}
              </Tag>
            ),
          },
          { title: t('notifications.message'), render: (_, n) => <Tooltip title={n.message}>{notificationText(t, n, currency)}</Tooltip> },
          {
            title: t('notifications.target'),
            render: (_, n) => (n.target.kind === 'none' ? '-' : `${t(`budgets.targets.${n.target.kind}`, { defaultValue: n.target.kind })}: ${n.target.value ?? ''}`),
            responsive: ['md'],
          },
          {
            title: t('notifications.delivery'),
            render: (_, n) => (
              <Tooltip title={n.lastError ?? undefined}>
                <Tag color={DELIVERY_COLOR[n.delivery] ?? 'default'}>
                  {t(`notifications.deliveries.${n.delivery}`, { defaultValue: n.delivery })}
                  {n.attempts > 1 ? ` ×${n.attempts}` : ''}
                </Tag>
              </Tooltip>
            ),
          },
        ]}
      />
    </>
  );
}
