import { SwapOutlined } from '@ant-design/icons';
import { Button, Form, Input, Modal, Progress, Select, Tag } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, get, type Migration, qs } from '../../api';
import { CursorTable, formatBytes, formatTime, PageTitle, useAction } from '../../components';

const MIGRATION_COLOR: Record<string, string> = {
  preparing: 'blue',
  transferring: 'processing',
  switching: 'gold',
  completed: 'green',
  failed: 'red',
};

/** Live and cold migrations: progress, bytes moved, downtime; start one for an instance. */
export function MigrationsPage() {
  const { t } = useTranslation();
  const [state, setState] = useState<string | undefined>();
  const [open, setOpen] = useState(false);
  const [form] = Form.useForm();
  const start = useAction(
    (v: { instance: string; host?: string }) =>
      api<Migration>('POST', `/instances/${encodeURIComponent(v.instance.trim())}/migrate`, v.host ? { host: v.host.trim() } : {}),
    {
      invalidate: [['migrations']],
      success: t('migrations.startedOk'),
      onSuccess: () => {
        setOpen(false);
        form.resetFields();
      },
    },
  );
  return (
    <>
      <PageTitle
        title={t('nav.migrations')}
        extra={
          <Button type="primary" icon={<SwapOutlined />} onClick={() => setOpen(true)}>
            {t('migrations.migrate')}
          </Button>
        }
      />
      <CursorTable<Migration>
        queryKey={['migrations', state ?? '']}
        fetch={async () => ({ ...(await get<{ items: Migration[] }>(`/migrations${qs({ state, limit: 200 })}`)), nextCursor: null })}
        refetchInterval={2000}
        rowKey="id"
        filterText={(m) => `${m.instanceId} ${m.sourceHost} ${m.targetHost} ${m.reason}`}
        emptyText={t('migrations.empty')}
        toolbar={
          <Select
            allowClear
            aria-label={t('migrations.state')}
            placeholder={t('migrations.state')}
            style={{ width: 180 }}
            value={state}
            onChange={setState}
            options={['preparing', 'transferring', 'switching', 'completed', 'failed'].map((s) => ({ value: s, label: t(`migrations.states.${s}`) }))}
          />
        }
        columns={[
          { title: t('migrations.instance'), dataIndex: 'instanceId' },
          { title: t('migrations.kind'), render: (_, m) => <Tag>{t(`migrations.kinds.${m.kind}`)}</Tag> },
          { title: t('migrations.from'), dataIndex: 'sourceHost', responsive: ['md'] },
          { title: t('migrations.to'), dataIndex: 'targetHost', responsive: ['md'] },
          {
            title: t('migrations.state'),
            render: (_, m) => (
              <>
                <Tag color={MIGRATION_COLOR[m.state]}>{t(`migrations.states.${m.state}`)}</Tag>
                {m.error ? <div style={{ maxWidth: 320, color: '#cf1322' }}>{m.error}</div> : null}
              </>
            ),
          },
          {
            title: t('migrations.progress'),
            render: (_, m) =>
              m.state === 'completed' ? (
                <Progress percent={100} size="small" style={{ minWidth: 120 }} />
              ) : m.totalBytes > 0 ? (
                <Progress
                  percent={Math.min(99, Math.round(((m.totalBytes - m.remainingBytes) / m.totalBytes) * 100))}
                  size="small"
                  format={(p) => `${m.phase ? t(`migrations.phases.${m.phase}`) : ''} ${p}%`}
                  style={{ minWidth: 160 }}
                />
              ) : (
                '-'
              ),
          },
          { title: t('migrations.moved'), render: (_, m) => formatBytes(m.transferredBytes), responsive: ['lg'] },
          { title: t('migrations.downtime'), render: (_, m) => (m.downtimeMs === null ? '-' : `${m.downtimeMs} ms`) },
          { title: t('migrations.reason'), render: (_, m) => t(`migrations.reasons.${m.reason}`, { defaultValue: m.reason }), responsive: ['lg'] },
          { title: t('migrations.started'), dataIndex: 'createdAt', render: formatTime, responsive: ['lg'] },
        ]}
      />
      <Modal
        open={open}
        title={t('migrations.migrate')}
        onCancel={() => setOpen(false)}
        onOk={() => form.submit()}
        okText={t('migrations.migrate')}
        cancelText={t('common.cancel')}
        confirmLoading={start.isPending}
      >
        <Form form={form} layout="vertical" onFinish={(v) => start.mutate(v)}>
          <Form.Item
            label={t('migrations.instance')}
            name="instance"
            rules={[{ required: true, message: t('validation.required') }, { pattern: /^\s*i-[a-z0-9]{12}\s*$/, message: t('migrations.instanceHint') }]}
          >
            <Input placeholder="i-0a1b2c3d4e5f" />
          </Form.Item>
          <Form.Item label={t('migrations.targetHost')} name="host" extra={t('migrations.targetHint')}>
            <Input />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}
