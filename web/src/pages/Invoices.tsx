import { DownloadOutlined } from '@ant-design/icons';
import { useQuery } from '@tanstack/react-query';
import { Button, Card, Descriptions, Form, Input, Modal, Popconfirm, Radio, Skeleton, Space, Table, Tag } from 'antd';
import { useMemo, useState } from 'react';
import { useTranslation } from 'react-i18next';
import { Link, useNavigate, useParams } from 'react-router-dom';
import { API, api, get, type Invoice, type InvoiceLine, type Page, qs } from '../api';
import { useAuth } from '../auth';
import { CursorTable, formatTime, PageTitle, QueryError, useAction } from '../components';
import { meterLabel } from './Usage';
import { money, serviceLabel } from './Billing';

const INVOICE_STATE_COLOR: Record<Invoice['state'], string> = {
  draft: 'blue',
  finalised: 'gold',
  paid: 'green',
  void: 'default',
};

/** "2026-11" from the period's start (billing months are UTC months). */
export const periodOf = (inv: Pick<Invoice, 'periodStart'>) => inv.periodStart.slice(0, 7);

export function InvoiceState({ state }: { state: Invoice['state'] }) {
  const { t } = useTranslation();
  return <Tag color={INVOICE_STATE_COLOR[state]}>{t(`invoices.states.${state}`, { defaultValue: state })}</Tag>;
}

/** The tenant's invoices (a platform admin sees every tenant's), newest month first. */
export function InvoicesPage() {
  const { t } = useTranslation();
  const { isAdmin } = useAuth();
  const generate = useAction(() => api<{ period: string; invoices: number }>('POST', '/billing/invoices/generate', {}), {
    invalidate: [['billing', 'invoices']],
    success: (r) => t('invoiceActions.generated', { n: r.invoices, period: r.period.slice(0, 7) }),
  });
  return (
    <>
      <PageTitle
        title={t('nav.invoices')}
        extra={
          isAdmin ? (
            <Popconfirm title={t('invoiceActions.confirmGenerate')} onConfirm={() => generate.mutate(undefined)} okText={t('common.yes')} cancelText={t('common.no')}>
              <Button loading={generate.isPending}>{t('invoiceActions.generate')}</Button>
            </Popconfirm>
          ) : undefined
        }
      />
      <CursorTable<Invoice>
        queryKey={['billing', 'invoices']}
        fetch={(cursor, limit) => get<Page<Invoice>>(`/billing/invoices${qs({ cursor, limit })}`)}
        rowKey="id"
        filterText={(i) => `${i.number} ${i.tenantId} ${periodOf(i)} ${i.state}`}
        emptyText={t('invoices.empty')}
        columns={[
          { title: t('invoices.number'), dataIndex: 'number', render: (v: string, i) => <Link to={`/billing/invoices/${i.id}`}>{v}</Link> },
          ...(isAdmin ? [{ title: t('invoices.tenant'), dataIndex: 'tenantId' }] : []),
          { title: t('invoices.period'), render: (_, i) => periodOf(i) },
          { title: t('invoices.state'), dataIndex: 'state', render: (v: Invoice['state']) => <InvoiceState state={v} /> },
          { title: t('billing.total'), dataIndex: 'totalMicros', align: 'right', render: (v: number, i) => money(v, i.currency) },
          { title: t('invoices.currency'), dataIndex: 'currency' },
          { title: t('invoices.created'), dataIndex: 'createdAt', render: formatTime, responsive: ['md'] },
        ]}
      />
    </>
  );
}

/** Finalise, mark paid or void an invoice (platform admins; the API refuses what its state forbids). */
function InvoiceAdminActions({ inv }: { inv: Invoice }) {
  const { t } = useTranslation();
  const [dialog, setDialog] = useState<'pay' | 'void' | null>(null);
  const [form] = Form.useForm();
  const inv8 = { invalidate: [['billing', 'invoices']] };
  const finalise = useAction(() => api('POST', `/billing/invoices/${encodeURIComponent(inv.id)}/finalise`), {
    ...inv8,
    success: t('invoiceActions.finalised'),
  });
  const pay = useAction((v: { method: 'balance' | 'external'; reference?: string }) => api('POST', `/billing/invoices/${encodeURIComponent(inv.id)}/pay`, v), {
    ...inv8,
    success: t('invoiceActions.paid'),
    onSuccess: () => setDialog(null),
  });
  const voidIt = useAction((v: { reason: string }) => api('POST', `/billing/invoices/${encodeURIComponent(inv.id)}/void`, v), {
    ...inv8,
    success: t('invoiceActions.voided'),
    onSuccess: () => setDialog(null),
  });
  return (
    <>
      {inv.state === 'draft' ? (
        <Popconfirm title={t('invoiceActions.confirmFinalise')} onConfirm={() => finalise.mutate(undefined)} okText={t('common.yes')} cancelText={t('common.no')}>
          <Button type="primary" loading={finalise.isPending}>
            {t('invoiceActions.finalise')}
          </Button>
        </Popconfirm>
      ) : null}
      {inv.state === 'finalised' ? (
        <Button type="primary" onClick={() => setDialog('pay')}>
          {t('invoiceActions.markPaid')}
        </Button>
      ) : null}
      {inv.state === 'draft' || inv.state === 'finalised' ? (
        <Button danger onClick={() => setDialog('void')}>
          {t('invoiceActions.void')}
        </Button>
      ) : null}
      {dialog ? (
        <Modal
          open
          title={dialog === 'pay' ? t('invoiceActions.markPaid') : t('invoiceActions.voidTitle', { number: inv.number })}
          onCancel={() => setDialog(null)}
          onOk={() => form.submit()}
          okText={dialog === 'pay' ? t('invoiceActions.markPaid') : t('invoiceActions.void')}
          okButtonProps={{ danger: dialog === 'void' }}
          cancelText={t('common.cancel')}
          confirmLoading={pay.isPending || voidIt.isPending}
        >
          <Form
            form={form}
            layout="vertical"
            initialValues={{ method: 'external' }}
            onFinish={(v) => (dialog === 'pay' ? pay.mutate({ method: v.method, ...(v.reference ? { reference: v.reference } : {}) }) : voidIt.mutate({ reason: v.reason }))}
          >
            {dialog === 'pay' ? (
              <>
                <Form.Item label={t('invoiceActions.method')} name="method">
                  <Radio.Group
                    options={[
                      { value: 'external', label: t('invoiceActions.methods.external') },
                      { value: 'balance', label: t('invoiceActions.methods.balance') },
                    ]}
                  />
                </Form.Item>
                <Form.Item label={t('accounts.reference')} name="reference" rules={[{ max: 200 }]}>
                  <Input autoComplete="off" />
                </Form.Item>
              </>
            ) : (
              <Form.Item label={t('invoiceActions.reason')} name="reason" extra={t('invoiceActions.voidHint')} rules={[{ required: true, message: t('validation.required') }, { max: 500 }]}>
                <Input.TextArea rows={3} />
              </Form.Item>
            )}
          </Form>
        </Modal>
      ) : null}
    </>
  );
}

const exportUrl = (id: string, format: 'json' | 'csv' | 'html', lang: string) =>
  `${API}/billing/invoices/${encodeURIComponent(id)}/export${qs({ format, lang: lang === 'zh-CN' ? 'zh-CN' : 'en' })}`;

/** One invoice: lines grouped by service with subtotals, tax, credits and total; downloads. */
export function InvoicePage() {
  const { t, i18n } = useTranslation();
  const { id = '' } = useParams();
  const nav = useNavigate();
  const { isAdmin } = useAuth();
  const q = useQuery({ queryKey: ['billing', 'invoices', id], queryFn: () => get<Invoice>(`/billing/invoices/${encodeURIComponent(id)}`) });
  const inv = q.data;
  const groups = useMemo(() => {
    const by = new Map<string, InvoiceLine[]>();
    for (const l of inv?.lines ?? []) by.set(l.service, [...(by.get(l.service) ?? []), l]);
    return [...by];
  }, [inv]);
  const subtotal = (service: string) => inv?.services?.find((s) => s.service === service)?.subtotalMicros ?? 0;
  return (
    <>
      <PageTitle
        title={inv ? t('invoices.title', { number: inv.number }) : t('nav.invoices')}
        extra={
          <>
            <Button onClick={() => nav('/billing/invoices')}>{t('common.back')}</Button>
            {inv && isAdmin ? <InvoiceAdminActions inv={inv} /> : null}
            {inv
              ? (['json', 'csv', 'html'] as const).map((f) => (
                  <Button key={f} icon={<DownloadOutlined />} href={exportUrl(inv.id, f, i18n.language)} download>
                    {t(`invoices.download.${f}`)}
                  </Button>
                ))
              : null}
          </>
        }
      />
      <QueryError error={q.error} />
      {q.isLoading ? <Skeleton active /> : null}
      {inv ? (
        <Space direction="vertical" size={16} style={{ width: '100%' }}>
          <Card>
            <Descriptions column={{ xs: 1, sm: 2, lg: 3 }} size="small">
              <Descriptions.Item label={t('invoices.period')}>{`${inv.periodStart.slice(0, 10)} – ${inv.periodEnd.slice(0, 10)}`}</Descriptions.Item>
              <Descriptions.Item label={t('invoices.state')}>
                <InvoiceState state={inv.state} />
              </Descriptions.Item>
              <Descriptions.Item label={t('invoices.tenant')}>{inv.tenantId}</Descriptions.Item>
              <Descriptions.Item label={t('invoices.created')}>{formatTime(inv.createdAt)}</Descriptions.Item>
              <Descriptions.Item label={t('invoices.finalised')}>{formatTime(inv.finalisedAt)}</Descriptions.Item>
              <Descriptions.Item label={t('invoices.paid')}>{formatTime(inv.paidAt)}</Descriptions.Item>
            </Descriptions>
          </Card>
          {groups.length === 0 ? (
            <Card>{t('invoices.noLines')}</Card>
          ) : (
            groups.map(([service, lines]) => (
              <Card key={service} title={serviceLabel(t, service)} extra={<b>{money(subtotal(service), inv.currency)}</b>} size="small">
                <Table<InvoiceLine>
                  size="small"
                  scroll={{ x: 'max-content' }}
                  pagination={false}
                  rowKey={(l) => `${l.meter}|${l.resourceId}`}
                  dataSource={lines}
                  columns={[
                    { title: t('invoices.resource'), dataIndex: 'resourceId' },
                    { title: t('invoices.meter'), dataIndex: 'meter', render: (m: string) => meterLabel(t, m) },
                    { title: t('invoices.quantity'), align: 'right', render: (_, l) => `${l.quantity} ${l.unit}` },
                    { title: t('billing.amount'), dataIndex: 'amountMicros', align: 'right', render: (v: number) => money(v, inv.currency) },
                  ]}
                />
              </Card>
            ))
          )}
          <Card>
            <Descriptions column={1} size="small" bordered>
              <Descriptions.Item label={t('invoices.subtotal')}>{money(inv.subtotalMicros, inv.currency)}</Descriptions.Item>
              <Descriptions.Item label={t('invoices.tax', { rate: `${inv.taxRatePpm / 10_000}%` })}>
                {money(inv.taxMicros, inv.currency)}
              </Descriptions.Item>
              <Descriptions.Item label={t('invoices.credits')}>{money(-inv.creditsMicros, inv.currency)}</Descriptions.Item>
              <Descriptions.Item label={t('billing.total')}>
                <b>{money(inv.totalMicros, inv.currency)}</b>
              </Descriptions.Item>
            </Descriptions>
          </Card>
        </Space>
      ) : null}
    </>
  );
}
