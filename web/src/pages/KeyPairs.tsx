import { PlusOutlined } from '@ant-design/icons';
import { Button, Form, Input, Modal, Popconfirm } from 'antd';
import { useState } from 'react';
import { useTranslation } from 'react-i18next';
import { api, get, type KeyPair, type Page, qs } from '../api';
import { CursorTable, formatTime, PageTitle, useAction } from '../components';

export function KeyPairsPage() {
  const { t } = useTranslation();
  const [importing, setImporting] = useState(false);
  const [form] = Form.useForm();
  const imp = useAction((v: { name: string; publicKey: string }) => api('POST', '/key-pairs', v), {
    invalidate: [['key-pairs']],
    success: t('keyPairs.imported'),
    onSuccess: () => {
      setImporting(false);
      form.resetFields();
    },
  });
  const del = useAction((name: string) => api('DELETE', `/key-pairs/${encodeURIComponent(name)}`), {
    invalidate: [['key-pairs']],
    success: t('common.deleted'),
  });
  return (
    <>
      <PageTitle
        title={t('nav.keyPairs')}
        extra={
          <Button type="primary" icon={<PlusOutlined />} onClick={() => setImporting(true)}>
            {t('keyPairs.import')}
          </Button>
        }
      />
      <CursorTable<KeyPair>
        queryKey={['key-pairs']}
        fetch={(cursor, limit) => get<Page<KeyPair>>(`/key-pairs${qs({ cursor, limit })}`)}
        rowKey="id"
        filterText={(k) => `${k.name} ${k.fingerprint}`}
        emptyText={t('keyPairs.empty')}
        columns={[
          { title: t('common.name'), dataIndex: 'name' },
          { title: t('keyPairs.fingerprint'), dataIndex: 'fingerprint', render: (f: string) => <span className="yh-mono">{f}</span> },
          { title: t('common.created'), dataIndex: 'createdAt', render: formatTime, responsive: ['md'] },
          {
            title: t('common.actions'),
            render: (_, k) => (
              <Popconfirm title={t('keyPairs.confirmDelete', { name: k.name })} onConfirm={() => del.mutate(k.name)} okText={t('common.delete')} okButtonProps={{ danger: true }} cancelText={t('common.cancel')}>
                <Button size="small" danger>
                  {t('common.delete')}
                </Button>
              </Popconfirm>
            ),
          },
        ]}
      />
      <Modal open={importing} title={t('keyPairs.import')} onCancel={() => setImporting(false)} onOk={() => form.submit()} okText={t('keyPairs.import')} cancelText={t('common.cancel')} confirmLoading={imp.isPending}>
        <Form form={form} layout="vertical" onFinish={(v) => imp.mutate({ name: v.name, publicKey: v.publicKey.trim() })}>
          <Form.Item label={t('common.name')} name="name" rules={[{ required: true, message: t('validation.required') }, { pattern: /^[a-z0-9][a-z0-9._-]{0,62}$/, message: t('validation.resourceName') }]}>
            <Input autoComplete="off" />
          </Form.Item>
          <Form.Item label={t('keyPairs.publicKey')} name="publicKey" extra={t('keyPairs.publicKeyHint')} rules={[{ required: true, message: t('validation.required') }]}>
            <Input.TextArea rows={4} className="yh-mono" placeholder="ssh-ed25519 AAAA… user@host" />
          </Form.Item>
        </Form>
      </Modal>
    </>
  );
}
